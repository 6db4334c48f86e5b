package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winacl"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

// checkWrittenPrivate: what login writes has a DACL for the user alone.
func checkWrittenPrivate(t *testing.T, path string) {
	t.Helper()
	if err := winacl.Check(path, winacl.Read|winacl.Write); err != nil {
		t.Fatal(err)
	}
	if !testenv.UnderWine() { // Wine shows modes, and SYSTEM always
		sd, _ := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		me, _ := winsid.Current()
		if got := sd.String(); got != "D:P(A;;FA;;;"+me+")" {
			t.Fatalf("the config's DACL is %s", got)
		}
	}
}

func setDACL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, _ := sd.DACL()
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
}

// The user's own config is accepted although Go reports it 0666; one that
// Everyone may write (or in a directory Everyone may write in) is refused.
func TestLoadRefusesConfigOthersCanWriteWindows(t *testing.T) {
	me, _ := winsid.Current()
	dir := filepath.Join(testenv.TempDir(t), "kc")
	os.MkdirAll(dir, 0o700)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("profiles:\n  default:\n    issuer: https://x/realms/a\n"), 0o600)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o666 {
		t.Logf("Go reports %v", fi.Mode().Perm())
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("the user's own config was refused: %v", err)
	}
	setDACL(t, path, "D:P(A;;FA;;;"+me+")(A;;FA;;;WD)")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "other accounts could rewrite it") {
		t.Fatalf("a config Everyone may write was accepted: %v", err)
	}
	setDACL(t, path, "D:P(A;;FA;;;"+me+")(A;;FR;;;WD)")
	if _, err := Load(path); err != nil {
		t.Fatalf("a config Everyone may read, not write, was refused: %v", err)
	}
	setDACL(t, dir, "D:P(A;OICI;FA;;;"+me+")(A;;FA;;;WD)")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "config directory") {
		t.Fatalf("a config in a directory Everyone may write was accepted: %v", err)
	}
}

func TestCAFileOthersCanWriteIsRefusedWindows(t *testing.T) {
	me, _ := winsid.Current()
	dir := filepath.Join(testenv.TempDir(t), "ca")
	os.Mkdir(dir, 0o755)
	pem := filepath.Join(dir, "ca.pem")
	os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), 0o644)
	cfg := "proxy:\n  ca_file: '" + pem + "'\n"
	if _, err := Parse("c.yaml", []byte(cfg)); err != nil {
		t.Fatalf("the user's own CA file was refused: %v", err)
	}
	setDACL(t, pem, "D:P(A;;FA;;;"+me+")(A;;FA;;;WD)")
	if _, err := Parse("c.yaml", []byte(cfg)); err == nil || !strings.Contains(err.Error(), "nobody else can change") {
		t.Fatalf("a CA file Everyone may write was accepted: %v", err)
	}
}

// A system-wide config the user (or anyone but the administrators) owns
// or may change steers every user's tokens: refused.
func TestSystemFileOfAUserIsRefusedWindows(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "kc-agent")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("profiles: {}\n"), 0o644)
	t.Setenv("KC_AGENT_SYSTEM_CONFIG", path)
	user := filepath.Join(testenv.TempDir(t), "config.yaml")
	c, err := Load(user)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SystemError(); err == nil || !strings.Contains(err.Error(), "not to the Administrators") || len(c.Profiles) != 0 {
		t.Fatalf("a system-wide config of the user's was used: %v", err)
	}
}
