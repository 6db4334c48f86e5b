package atomicfile

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winacl"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

// checkMode: a private mode is a protected DACL for the user alone;
// another keeps what the directory passes on.
func checkMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if mode&0o077 != 0 {
		return
	}
	if err := winacl.Check(path, winacl.Read|winacl.Write); err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := winsid.Current()
	got := sd.String()
	if testenv.UnderWine() {
		// Wine keeps ACLs as modes: the user and SYSTEM, never Everyone.
		if strings.Contains(got, "WD") {
			t.Fatalf("DACL %s", got)
		}
		return
	}
	if got != "D:P(A;;FA;;;"+me+")" {
		t.Fatalf("DACL %s, want the user alone", got)
	}
}
