//go:build linux

package jupyterhub

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UserPrefix starts the name of every Linux user the tests create, so a
// run that died before its cleanup is cleaned up by the next one.
const UserPrefix = "kcjh"

// User is a Linux user created for a test, with a PAM password.
type User struct {
	Name, Password string
	UID, GID       int
	Home           string
}

// CreateUser adds a Linux user with a home directory and a random PAM
// password. The home is left 0755 (Debian's default before 12), so the
// tests prove that kc-agent keeps its own files private rather than rely
// on the home directory's mode.
func CreateUser(suffix string) (*User, error) {
	name := UserPrefix + suffix
	if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	u := &User{Name: name, Password: randomHex(12)}
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(name + ":" + u.Password + "\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		u.Remove()
		return nil, fmt.Errorf("chpasswd %s: %v: %s", name, err, out)
	}
	lu, err := user.Lookup(name)
	if err != nil {
		u.Remove()
		return nil, err
	}
	u.UID, _ = strconv.Atoi(lu.Uid)
	u.GID, _ = strconv.Atoi(lu.Gid)
	u.Home = lu.HomeDir
	if err := os.Chmod(u.Home, 0o755); err != nil {
		u.Remove()
		return nil, err
	}
	return u, nil
}

// Remove ends every process of the user (by PID) and deletes the user with
// its home. The processes are the test's own: the user exists only for it.
func (u *User) Remove() error {
	if u.UID > 0 {
		killUID(u.UID)
	}
	out, err := exec.Command("userdel", "--remove", "--force", u.Name).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("does not exist")) {
		return fmt.Errorf("userdel %s: %v: %s", u.Name, err, out)
	}
	return nil
}

// RemoveStaleUsers deletes users with UserPrefix left by a run that died.
// Callers hold the run lock, so no other run's users are among them.
func RemoveStaleUsers() error {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || !strings.HasPrefix(f[0], UserPrefix) {
			continue
		}
		uid, _ := strconv.Atoi(f[2])
		if err := (&User{Name: f[0], UID: uid}).Remove(); err != nil {
			return err
		}
	}
	return nil
}

func killUID(uid int) {
	for i := 0; i < 50; i++ {
		procs := Processes(func(p Proc) bool { return p.UID == uid })
		if len(procs) == 0 {
			return
		}
		for _, p := range procs {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Proc is a process as /proc shows it.
type Proc struct {
	PID  int
	UID  int
	Comm string
	Argv []string
	Exe  string
}

// Processes lists the processes that match keep.
func Processes(keep func(Proc) bool) []Proc {
	entries, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		var st syscall.Stat_t
		if syscall.Stat(dir, &st) != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		exe, _ := os.Readlink(filepath.Join(dir, "exe"))
		p := Proc{PID: pid, UID: int(st.Uid), Comm: strings.TrimSpace(string(comm)), Exe: exe}
		if len(cmdline) > 0 {
			p.Argv = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		}
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
