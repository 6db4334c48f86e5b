package launcher

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// Another user who read the launcher link (from the opener's argv) gets
// the connection closed before a byte is read: no redirect, and the link
// stays good for this user's browser.
func TestOtherUserIsRefused(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	l, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	target := "https://sso.example.com/realms/a/protocol/openid-connect/auth?state=SECRET-STATE"
	link := l.Link(target, time.Now().Add(time.Minute))
	out, err := exec.Command(setpriv, testenv.AsNobody("curl", "-sS", "-i", "--max-time", "5", link)...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "SECRET-STATE") || strings.Contains(string(out), "302") {
		t.Fatalf("uid %d got an answer from the launcher (%v):\n%s", testenv.Nobody, err, out)
	}
	if l.Refused() != 1 {
		t.Fatalf("refusals counted: %d, want 1", l.Refused())
	}
	if resp := get(t, link, ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
		t.Fatalf("this user's use after the refusal: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
