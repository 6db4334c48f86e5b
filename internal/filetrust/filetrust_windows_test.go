package filetrust

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winacl"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

func problem(err error) Problem {
	var te *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &te):
		return te.Problem
	}
	return -1
}

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

// The user's own protected file passes User and UserOrRoot, for reading
// and writing, by name and as opened; System refuses it (it is not the
// Administrators'); an entry letting Everyone read it fails Read.
func TestOwnerSetsAndACL(t *testing.T) {
	me, err := winsid.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testenv.TempDir(t), "kc")
	os.MkdirAll(dir, 0o700)
	if err := winacl.Protect(dir); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("content"), 0o600)
	if err := winacl.Protect(f); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Owners{User, UserOrRoot} {
		if err := Check(f, o, Read|Write); err != nil {
			t.Errorf("%v: the user's protected file: %v", o, err)
		}
		if data, err := ReadFile(f, o); err != nil || string(data) != "content" {
			t.Errorf("%v: ReadFile: %q, %v", o, data, err)
		}
	}
	if got := problem(Check(f, System, Write)); got != WrongOwner {
		t.Errorf("System accepted the user's file: problem %d", got)
	}
	if _, err := ReadFile(f, System); problem(err) != WrongOwner {
		t.Errorf("ReadFile(System) of the user's file: %v", err)
	}
	setSDDL(t, f, "D:P(A;;FA;;;"+me+")(A;;FR;;;WD)")
	if got := problem(Check(f, User, Read|Write)); got != OthersCanRead {
		t.Errorf("a file Everyone may read, checked as a secret: problem %d", got)
	}
	if err := Check(f, User, Write); err != nil {
		t.Errorf("a file Everyone may only read, checked for writing: %v", err)
	}
	setSDDL(t, f, "D:P(A;;FA;;;"+me+")(A;;FA;;;WD)")
	if _, err := ReadFile(f, User); problem(err) != OthersCanWrite {
		t.Errorf("ReadFile of a file Everyone may write: %v", err)
	}
}
