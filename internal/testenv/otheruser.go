//go:build unix

package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Nobody is the uid (and gid) the other-user tests act as.
const Nobody = 65534

// OtherUser makes sure the test can act as another user: it runs as root
// and setpriv(1) is installed; it returns setpriv's path. The test command
// (make test) sets KC_AGENT_REQUIRE_OTHER_UID=1, and then a missing
// capability fails the test: the attacks these tests make must run in CI,
// not quietly skip. Bare `go test` as a normal user skips.
func OtherUser(t testing.TB) (setpriv string) {
	t.Helper()
	missing := ""
	if os.Getuid() != 0 {
		missing = "needs root to act as another user"
	} else if p, err := exec.LookPath("setpriv"); err != nil {
		missing = "needs setpriv(1) (Debian util-linux) to act as another user"
	} else {
		setpriv = p
	}
	if missing == "" {
		return setpriv
	}
	if os.Getenv("KC_AGENT_REQUIRE_OTHER_UID") == "1" {
		t.Fatal(missing + " (KC_AGENT_REQUIRE_OTHER_UID=1)")
	}
	t.Skip(missing)
	return ""
}

// AsNobody is setpriv's arguments to run the command args as Nobody.
func AsNobody(args ...string) []string {
	return append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
}
