package proxy

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/privatefile"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

// The secret written on the first start is read back on the next one, on
// every OS: on Windows, where Go reports every writable file as 0666, the
// proxy used to refuse its own secret and start only once.
func TestSecretSurvivesRestart(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "state")
	s1, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadOrCreateSecret(dir)
	if err != nil || s2 != s1 {
		t.Fatalf("second start: %v (same secret: %v)", err, s1 == s2)
	}
	if err := privatefile.Check(filepath.Join(dir, "proxy-secret")); err != nil {
		t.Fatalf("the secret file is not private: %v", err)
	}
	if strings.Contains(s1, "\n") || len(s1) < 32 {
		t.Fatalf("secret %q", s1)
	}
	if _, err := os.Stat(filepath.Join(dir, "proxy-secret")); err != nil {
		t.Fatal(err)
	}
}

// A busy port keeps its hint on every OS (on Windows the error is
// WSAEADDRINUSE, which syscall.EADDRINUSE does not match).
func TestBusyPortKeepsItsHint(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = net.Listen("tcp", busy.Addr().String())
	if err == nil {
		t.Skip("the system let two sockets listen on one port")
	}
	msg := listenError(busy.Addr().String(), err).Error()
	if !strings.Contains(msg, "set proxy.listen to another port") && !strings.Contains(msg, "holds the port") {
		t.Fatalf("a busy port lost its hint: %s", msg)
	}
}
