//go:build unix

package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// keepAliveSquatter answers the first request on its port 401 with
// keep-alive, closes its listener (the port looks free, or the user's,
// to anyone who probes it now) and records everything else that comes on
// the kept connection: where git would send the credential it got.
const keepAliveSquatter = `
import socket, sys
host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(16)
open(log + ".ready", "w").close()
c, _ = s.accept()
buf = b""
while b"\r\n\r\n" not in buf:
    d = c.recv(65536)
    if not d:
        break
    buf += d
with open(log, "ab") as f:
    f.write(buf)
c.sendall(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="git"\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n')
s.close()
open(log + ".closed", "w").close()
buf = b""
while b"\r\n\r\n" not in buf:
    d = c.recv(65536)
    if not d:
        break
    buf += d
with open(log, "ab") as f:
    f.write(buf)
c.close()
`

// A plain-http remote on localhost: the user's git server on [::1]:P,
// another user on 127.0.0.1:P playing the keep-alive trick. git-credential
// gives git no token for it (the squatter never sees one) and says to run
// git setup; after git setup git goes through the agent's route, and a
// clone and a push work, with the token added by the proxy.
func TestGitCleartextLoopbackGoesThroughTheRoute(t *testing.T) {
	testenv.OtherUser(t)
	var port int
	f := newGitFixtureWith(t, keycloak.RealmTest, "gwen", "", func(t *testing.T, _ *testenv.TestCA, issuer string) *gitServer {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		gs := newGitServer(t, issuer)
		gs.serve(t, ln)
		gs.URL = "http://localhost:" + strconv.Itoa(port) + "/git"
		return gs
	})
	received := squatLog(t)
	asNobody(t, keepAliveSquatter, "127.0.0.1", strconv.Itoa(port), received)
	waitReadyFile(t, received)
	remote := f.gs.URL + "/team"

	// git set up the old way, as a credential helper for the remote.
	helper := "!" + kcAgentCommand(t) + " git-credential"
	f.git(t, "", "config", "--global", "credential."+remote+".helper", helper)
	f.git(t, "", "config", "--global", "credential."+remote+".useHttpPath", "true")
	out, err := f.gitTry("ls-remote", f.repo)
	if _, err := os.Stat(received + ".closed"); err == nil {
		t.Log("git's first request went to the squatter")
	}
	squatterSawNoCredential(t, received)
	if err == nil || !strings.Contains(out, "kc-agent git setup "+remote+"/repo.git") {
		t.Fatalf("git ls-remote with kc-agent as its credential helper: %v, want a refusal naming git setup:\n%s", err, out)
	}
	for _, s := range f.gs.Seen() {
		if s.Scheme != "" {
			t.Fatalf("the user's server got a credential from git directly: %+v\n%s", s, out)
		}
	}

	code, _, stderr := f.e.run("git", "setup", "--command", kcAgentCommand(t), remote)
	if code != 0 || !strings.Contains(stderr, `through the route "git"`) {
		t.Fatalf("git setup: exit %d: %s", code, stderr)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := f.gitTry("clone", "-q", f.repo, clone); err != nil {
		t.Fatalf("clone through the route: %v\n%s\nagent log:\n%s", err, out, f.agent.log.String())
	}
	os.WriteFile(filepath.Join(clone, "new.txt"), []byte("pushed\n"), 0o644)
	f.git(t, "", "-C", clone, "add", "new.txt")
	f.git(t, "", "-C", clone, "commit", "-q", "-m", "push through the route")
	f.git(t, "", "-C", clone, "push", "-q", "origin", "main")
	if log := f.git(t, "", "-C", filepath.Join(f.gs.root, "team", "repo.git"), "log", "--oneline", "-1"); !strings.Contains(log, "push through the route") {
		t.Fatalf("the push did not land: %s", log)
	}
	ok := 0
	for _, s := range f.gs.Seen() {
		if s.OK && s.Scheme == "bearer" {
			ok++
		}
	}
	if ok == 0 {
		t.Fatalf("the user's server saw no request with the route's token: %+v", f.gs.Seen())
	}
	squatterSawNoCredential(t, received)
}

func squatterSawNoCredential(t *testing.T, log string) {
	t.Helper()
	got, _ := os.ReadFile(log)
	if strings.Contains(strings.ToLower(string(got)), "authorization") {
		t.Fatalf("the squatter received a credential (%d bytes in all)", len(got))
	}
}
