package winacl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

func setSDDL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, _ := sd.DACL()
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
}

// A protected file passes the check although Go reports it 0666; the same
// file shared with Everyone fails it, for reading and for writing.
func TestProtectAndCheck(t *testing.T) {
	me, err := winsid.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.TempDir(t)
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Protect(f); err != nil {
		t.Fatal(err)
	}
	if err := Check(f, Read|Write); err != nil {
		t.Fatalf("own protected file refused: %v", err)
	}
	sd, _ := windows.GetNamedSecurityInfo(f, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if got := sd.String(); !strings.Contains(got, me) || strings.Contains(got, "WD") {
		t.Fatalf("protected file's DACL: %s", got)
	}
	setSDDL(t, f, "D:P(A;;FA;;;"+me+")(A;;FR;;;WD)")
	if err := Check(f, Read); err == nil || !strings.Contains(err.Error(), "access") {
		t.Fatalf("a file Everyone can read passed: %v", err)
	}
	if err := Check(f, Write); err != nil {
		t.Fatalf("read-only for Everyone refused as writable: %v", err)
	}
	// Wine keeps file ACLs as Unix modes: it has no place for a group
	// entry, and shows none.
	if !testenv.UnderWine() {
		setSDDL(t, f, "D:P(A;;FA;;;"+me+")(A;;FA;;;BU)")
		if err := Check(f, Write); err == nil {
			t.Fatal("a file the Users group can write passed")
		}
	}
	if err := Protect(dir); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir, Write); err != nil {
		t.Fatalf("protected directory refused: %v", err)
	}
}
