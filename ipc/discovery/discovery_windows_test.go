package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

// The state directory is created for the user alone and accepted, though
// Go reports it 0777; one that other accounts may write in is refused.
func TestCheckSocketDirWindows(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "kc-agent")
	if err := PrepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckSocketDir(dir); err != nil {
		t.Fatalf("own directory refused: %v", err)
	}
	me, _ := winsid.Current()
	sd, _ := windows.SecurityDescriptorFromString("D:P(A;OICI;FA;;;" + me + ")(A;OICI;FA;;;WD)")
	dacl, _, _ := sd.DACL()
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
	if err := CheckSocketDir(dir); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a directory Everyone may write was accepted: %v", err)
	}
	f := filepath.Join(testenv.TempDir(t), "file")
	os.WriteFile(f, nil, 0o600)
	if err := CheckSocketDir(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file accepted as the directory: %v", err)
	}
}

// The pipe is named after this user's SID; the lock lives under
// LOCALAPPDATA, not beside a pipe.
func TestWindowsPlaces(t *testing.T) {
	t.Setenv("KC_AGENT_SOCK", "")
	t.Setenv("KC_AGENT_STATE_DIR", "")
	me, _ := winsid.Current()
	if p, err := SocketPath(); err != nil || p != `\\.\pipe\kc-agent-`+me {
		t.Fatalf("socket path %q %v", p, err)
	}
	t.Setenv("LOCALAPPDATA", `C:\Users\ana\AppData\Local`)
	if l, err := LockPath(); err != nil || l != `C:\Users\ana\AppData\Local\kc-agent\agent.lock` {
		t.Fatalf("lock %q %v", l, err)
	}
	t.Setenv("KC_AGENT_SOCK", `C:\x\agent.sock`)
	if _, err := SocketPath(); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("a file path accepted as the pipe: %v", err)
	}
}
