package session

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// The QR code as SVG: well-formed, square, one unit square per dark module
// of the same code the terminal shows.
func TestQRSVG(t *testing.T) {
	const text = "https://sso.example.com/realms/a/device?user_code=WXYZ-ABCD"
	svg := qrSVG(text)
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	q, _ := qrcode.New(text, qrcode.Medium)
	bm := q.Bitmap()
	dark := 0
	for _, row := range bm {
		for _, d := range row {
			if d {
				dark++
			}
		}
	}
	if got := strings.Count(doc.Path.D, "M"); got != dark {
		t.Errorf("%d squares, want %d", got, dark)
	}
	if want := fmt.Sprintf("0 0 %d %d", len(bm), len(bm)); doc.ViewBox != want {
		t.Errorf("viewBox %q, want %q", doc.ViewBox, want)
	}
	if strings.Contains(svg, "<script") {
		t.Error("script in the SVG")
	}
}
