package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/winacl"
)

// checkFileStoreProtection: on Windows the token file has a DACL for the
// user alone (Go calls it 0666 all the same), and a token file another
// account can read is refused.
func checkFileStoreProtection(t *testing.T, f *store.File) {
	t.Helper()
	p := filepath.Join(f.Dir, "p.json")
	if err := winacl.Check(p, winacl.Read|winacl.Write); err != nil {
		t.Fatalf("token file: %v", err)
	}
	if err := winacl.Check(f.Dir, winacl.Read|winacl.Write); err != nil {
		t.Fatalf("token directory: %v", err)
	}
	me, _ := windows.GetCurrentProcessToken().GetTokenUser()
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;" + me.User.Sid.String() + ")(A;;FR;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, _ := sd.DACL()
	if err := windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(context.Background(), "p"); err == nil || !strings.Contains(err.Error(), "icacls") {
		t.Fatalf("a token file Everyone can read was accepted: %v", err)
	}
}

// checkKeyFileProtection: the key file has a DACL for the user alone.
func checkKeyFileProtection(t *testing.T, ks *store.FileKeys, path string) {
	t.Helper()
	if err := winacl.Check(path, winacl.Read|winacl.Write); err != nil {
		t.Fatalf("key file: %v", err)
	}
}
