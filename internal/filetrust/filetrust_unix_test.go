//go:build unix

package filetrust

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// problem is the Problem of err, 0 when it is nil, -1 for another error.
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

// Each owner set accepts its owners and no one else: the test plays user
// 1000 (running as root, it can give files to anyone).
func TestOwnerSets(t *testing.T) {
	testenv.OtherUser(t)
	getuid = func() int { return 1000 }
	t.Cleanup(func() { getuid = os.Getuid })
	dir := t.TempDir()
	file := func(uid int) string {
		p := filepath.Join(dir, "f"+string(rune('a'+uid%26)))
		os.WriteFile(p, []byte("x"), 0o644)
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	me, root, other := file(1000), file(0), file(testenv.Nobody)
	for _, tc := range []struct {
		owners          Owners
		me, root, other Problem
	}{
		{User, 0, WrongOwner, WrongOwner},
		{UserOrRoot, 0, 0, WrongOwner},
		{System, WrongOwner, 0, WrongOwner},
	} {
		for path, want := range map[string]Problem{me: tc.me, root: tc.root, other: tc.other} {
			if got := problem(Check(path, tc.owners, Write)); got != want {
				t.Errorf("%v, a file of uid %d: problem %d, want %d", tc.owners, owner(t, path), got, want)
			}
		}
	}
}

func owner(t *testing.T, path string) int {
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// Write refuses group and other write bits; Read|Write (secrets) any bit
// for them; a sticky directory others may write passes only on the way to
// a file, never as the thing checked.
func TestModes(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o600)
	for _, tc := range []struct {
		mode os.FileMode
		deny Access
		want Problem
	}{
		{0o644, Write, 0},
		{0o664, Write, OthersCanWrite},
		{0o646, Write, OthersCanWrite},
		{0o600, Read | Write, 0},
		{0o640, Read | Write, OthersCanRead},
		{0o601, Read | Write, OthersCanRead},
		{0o620, Read | Write, OthersCanWrite},
	} {
		os.Chmod(f, tc.mode)
		if got := problem(Check(f, User, tc.deny)); got != tc.want {
			t.Errorf("mode %v, deny %d: problem %d, want %d", tc.mode, tc.deny, got, tc.want)
		}
	}
	sticky := filepath.Join(dir, "tmp")
	os.Mkdir(sticky, 0o755)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	if got := problem(Check(sticky, User, Write)); got != OthersCanWrite {
		t.Errorf("a sticky 1777 directory checked itself: problem %d", got)
	}
	inside := filepath.Join(sticky, "f")
	os.WriteFile(inside, []byte("x"), 0o644)
	if _, err := CheckPath(inside, UserOrRoot); err != nil {
		t.Errorf("a file of yours in a sticky directory: %v", err)
	}
	os.Chmod(sticky, 0o777)
	if _, err := CheckPath(inside, UserOrRoot); problem(err) != OthersCanWrite {
		t.Errorf("a file in a 0777 directory passed: %v", err)
	}
	// A group-writable directory above a user's file (a home shared with
	// a group of one) passes; above the system file it doesn't.
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, "conf"), 0o755)
	os.Chmod(home, 0o775)
	deep := filepath.Join(home, "conf", "f")
	os.WriteFile(deep, []byte("x"), 0o644)
	if _, err := CheckPath(deep, UserOrRoot); err != nil {
		t.Errorf("a group-writable directory above a user's file: %v", err)
	}
	if os.Getuid() == 0 {
		if _, err := CheckPath(deep, System); problem(err) != OthersCanWrite {
			t.Errorf("a group-writable directory above a system file: %v", err)
		}
	}
}

// CheckPath follows links and checks the directories of their targets;
// a link someone else owns is refused; a loop ends.
func TestCheckPathFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	safe, open := filepath.Join(dir, "safe"), filepath.Join(dir, "open")
	os.Mkdir(safe, 0o755)
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o777)
	os.WriteFile(filepath.Join(safe, "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(open, "f"), []byte("x"), 0o644)
	os.Symlink("../open/f", filepath.Join(safe, "to-open"))
	os.Symlink("f", filepath.Join(safe, "to-f"))
	os.Symlink("loop", filepath.Join(safe, "loop"))
	if fi, err := CheckPath(filepath.Join(safe, "to-f"), UserOrRoot); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a relative link in a safe directory: %v", err)
	}
	if _, err := CheckPath(filepath.Join(safe, "to-open"), UserOrRoot); problem(err) != OthersCanWrite {
		t.Errorf("a link into a 0777 directory: %v", err)
	}
	if _, err := CheckPath(filepath.Join(safe, "loop"), UserOrRoot); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("a link loop: %v", err)
	}
	if _, err := CheckPath(filepath.Join(safe, "f", "x"), UserOrRoot); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("a file used as a directory: %v", err)
	}
	if os.Getuid() == 0 {
		os.Lchown(filepath.Join(safe, "to-f"), testenv.Nobody, testenv.Nobody)
		if _, err := CheckPath(filepath.Join(safe, "to-f"), UserOrRoot); problem(err) != WrongOwner {
			t.Errorf("a link of another user: %v", err)
		}
	}
}

// ReadFile reads what it checked; a FIFO is refused at once (not waited
// on), as is a directory.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("content"), 0o644)
	if data, err := ReadFile(f, UserOrRoot); err != nil || string(data) != "content" {
		t.Fatalf("ReadFile: %q, %v", data, err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(fifo, UserOrRoot); problem(err) != NotRegular {
		t.Errorf("a FIFO: %v", err)
	}
	if _, err := ReadFile(dir, UserOrRoot); problem(err) != NotRegular {
		t.Errorf("a directory: %v", err)
	}
	os.Chmod(f, 0o666)
	if _, err := ReadFile(f, UserOrRoot); problem(err) != OthersCanWrite {
		t.Errorf("a 0666 file: %v", err)
	}
}
