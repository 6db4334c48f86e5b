//go:build linux

// Package wine runs kc-agent's Windows binaries under Wine, for tests: a
// private Wine prefix made once per machine and cached (with the
// bcryptprimitives.dll that Go needs and Wine 8 lacks), cloned per test, and
// commands with the environment that keeps Wine quiet and headless.
//
// What Wine 8 (Debian 12) can and can not do, measured:
//   - Go >= 1.24 programs need ProcessPrng from bcryptprimitives.dll; Wine 8
//     has none. dll/processprng.c provides it. The Go runtime loads it from
//     system32 only, so it goes there.
//   - Named pipes work; AF_UNIX does not (WSAEAFNOSUPPORT).
//   - NtSetInformationFile class 64 is missing, so os.RemoveAll fails in a
//     Windows program. Test binaries get the standard library's fallback
//     switched on (Overlay); everything else is cleaned up from Linux.
//   - Wine shares the host's loopback and maps Z: to /. GetExtendedTcpTable
//     names the owning process of a Wine process's connecting socket only:
//     a listening socket (even a Wine process's own) and any Linux
//     process's socket show PID 0.
//   - Wine 8 keeps no file ACLs: SetNamedSecurityInfo succeeds and stores
//     nothing, and a file's DACL is made up from its Unix mode (the "other"
//     bits become an Everyone entry). A new file takes its mode from its
//     directory's, a new directory from the umask. So the user's profile is
//     0700 in a clone and programs run under umask 077: files read as the
//     user's alone, as under a Windows profile's inherited ACL. What Wine
//     can't show is a DACL set on purpose (Protect-then-check tests pass
//     because the file was private already).
package wine

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

//go:embed dll/processprng.c
var processPrngC []byte

//go:embed deleteat_fallback.go.txt
var deleteatFallbackGo []byte

// layout changes when the way a prefix is made changes: a new cache entry.
const layout = "1"

// Packages are the Debian packages the harness needs.
const Packages = "wine wine64 gcc-mingw-w64-x86-64"

// Missing says what is missing to run Windows programs here, or "" when
// nothing is.
func Missing() string {
	var miss []string
	if runtime.GOARCH != "amd64" {
		return "Windows test binaries are amd64; this machine is " + runtime.GOARCH
	}
	for _, c := range []string{"wine", "wineboot", "wineserver", "x86_64-w64-mingw32-gcc"} {
		if _, err := exec.LookPath(c); err != nil {
			miss = append(miss, c)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return strings.Join(miss, ", ") + " not found (apt-get install " + Packages + ", or make deps)"
}

// Env is the environment a Windows program runs with in prefix: headless,
// no debug channels, no Mono or Gecko install prompts.
func Env(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "WINEPREFIX", "WINEDEBUG", "DISPLAY", "WAYLAND_DISPLAY", "WINEDLLOVERRIDES", "WINESERVER", "WINEARCH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
}

// CachedPrefix returns the machine's cached prefix, making it when needed
// (about 10 s, once per Wine version): under the test cache
// (keycloak.CacheDir, ~/.cache/kc-agent-test), in wine/<key>. Use it
// read-only: run programs in a Clone.
func CachedPrefix(ctx context.Context, logf func(string, ...any)) (string, error) {
	if m := Missing(); m != "" {
		return "", errors.New(m)
	}
	ver, err := exec.CommandContext(ctx, "wine", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("wine --version: %w", err)
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\x00%s\x00", layout, strings.TrimSpace(string(ver)))
	sum.Write(processPrngC)
	key := hex.EncodeToString(sum.Sum(nil))[:16]
	cache, err := keycloak.CacheDir()
	if err != nil {
		return "", err
	}
	base := filepath.Join(cache, "wine")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(base, key)
	if _, err := os.Stat(filepath.Join(dir, ".kc-agent-ready")); err == nil {
		return dir, nil
	}
	unlock, err := lock(filepath.Join(base, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, ".kc-agent-ready")); err == nil {
		return dir, nil
	}
	logf("wine: making the cached prefix %s (once per machine)", dir)
	start := time.Now()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := makePrefix(ctx, tmp); err != nil {
		Kill(tmp)
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf("wine: prefix ready in %s", time.Since(start).Round(100*time.Millisecond))
	return dir, nil
}

func makePrefix(ctx context.Context, dir string) error {
	boot := exec.CommandContext(ctx, "wineboot", "-i")
	boot.Env = Env(dir)
	if out, err := boot.CombinedOutput(); err != nil {
		return fmt.Errorf("wineboot -i: %w\n%s", err, out)
	}
	// wineserver writes the registry when it exits: wait for that.
	wait := exec.CommandContext(ctx, "wineserver", "-w")
	wait.Env = Env(dir)
	if out, err := wait.CombinedOutput(); err != nil {
		return fmt.Errorf("wineserver -w: %w\n%s", err, out)
	}
	sys32 := filepath.Join(dir, "drive_c", "windows", "system32")
	if _, err := os.Stat(filepath.Join(sys32, "kernel32.dll")); err != nil {
		return fmt.Errorf("wineboot made no system32: %w", err)
	}
	src := filepath.Join(dir, "processprng.c")
	if err := os.WriteFile(src, processPrngC, 0o644); err != nil {
		return err
	}
	cc := exec.CommandContext(ctx, "x86_64-w64-mingw32-gcc", "-shared", "-O2", "-s", "-Wl,--no-insert-timestamp",
		"-o", filepath.Join(sys32, "bcryptprimitives.dll"), src, "-ladvapi32")
	if out, err := cc.CombinedOutput(); err != nil {
		return fmt.Errorf("building bcryptprimitives.dll: %w\n%s", err, out)
	}
	return os.WriteFile(filepath.Join(dir, ".kc-agent-ready"), nil, 0o644)
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// NewClone makes a private prefix, cloned from the cached one (made first
// if needed), next to the cache so that the clone's DLLs can be hard links
// even where /tmp is another file system. The caller ends it with Remove.
// Clones more than a day old (left by a test that was killed) are removed.
func NewClone(ctx context.Context, logf func(string, ...any)) (string, error) {
	cached, err := CachedPrefix(ctx, logf)
	if err != nil {
		return "", err
	}
	clones := filepath.Join(filepath.Dir(cached), "clones")
	if err := os.MkdirAll(clones, 0o755); err != nil {
		return "", err
	}
	if old, err := os.ReadDir(clones); err == nil {
		for _, d := range old {
			if fi, err := d.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				Remove(filepath.Join(clones, d.Name()))
			}
		}
	}
	dir, err := os.MkdirTemp(clones, "p")
	if err != nil {
		return "", err
	}
	if err := Clone(cached, dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("cloning the wine prefix: %w", err)
	}
	return dir, nil
}

// Remove ends every Windows process of the prefix and removes it.
func Remove(prefix string) error {
	Kill(prefix)
	return os.RemoveAll(prefix)
}

// Clone makes dst a private prefix from the cached src: the registry and
// the user's files are copied, the Windows directory's files (some 700 MB
// of DLLs Wine only reads) are hard links when src and dst share a file
// system. A clone has its own registry, credentials and wineserver.
func Clone(src, dst string) error {
	windir := filepath.Join(src, "drive_c", "windows")
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(to, 0o755); err != nil {
				return err
			}
			return os.Chmod(to, dirMode(rel))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case !d.Type().IsRegular():
			return nil // wineserver's socket and the like
		}
		if strings.HasPrefix(p, windir+string(filepath.Separator)) && !strings.HasSuffix(p, ".reg") {
			if os.Link(p, to) == nil {
				return nil
			}
		}
		return copyFile(p, to)
	})
}

// dirMode is the mode of a clone's directory: the user's profile
// (C:\users\<name>, with %TEMP% and %APPDATA%) is private, as on Windows.
// It matters under Wine, which keeps no file ACLs: it makes them up from
// Unix modes, and a new file takes its "other" bits from its directory's,
// shown as an Everyone entry. In a 0755 profile every file the agent
// writes would read as open to Everyone, and be refused by its own checks.
func dirMode(rel string) fs.FileMode {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) >= 3 && parts[0] == "drive_c" && parts[1] == "users" && parts[2] != "Public" {
		return 0o700
	}
	return 0o755
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Kill ends every Windows process of prefix (its wineserver and all it
// runs: they are this harness's own, whatever they started) and waits
// until the wineserver has gone.
func Kill(prefix string) {
	for _, flag := range []string{"-k", "-w"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		k := exec.CommandContext(ctx, "wineserver", flag)
		k.Env = Env(prefix)
		k.Run()
		cancel()
	}
}

// Command runs the Windows program exe (a Linux path) under Wine in
// prefix, with umask 077: with the private profile (dirMode), what the
// program creates reads as its user's alone, as under a Windows profile's
// inherited ACL; with Wine's default umask every new directory's "other"
// bits would show as an Everyone entry.
func Command(ctx context.Context, prefix, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `umask 077 && exec wine "$@"`, "wine", exe}, args...)...)
	cmd.Env = Env(prefix)
	return cmd
}

// WinPath is the Windows name of the Linux path p (Wine maps Z: to /).
func WinPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	return `Z:` + strings.ReplaceAll(abs, "/", `\`)
}

// Overlay writes, into dir, a go build -overlay file for Windows test
// binaries that run under Wine (see deleteat_fallback.go.txt) and returns
// its path.
func Overlay(dir string) (string, error) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w", err)
	}
	src := filepath.Join(dir, "wine_deleteat_fallback.go")
	if err := os.WriteFile(src, deleteatFallbackGo, 0o644); err != nil {
		return "", err
	}
	target := filepath.Join(strings.TrimSpace(string(goroot)), "src", "internal", "syscall", "windows", "zz_wine_deleteat_fallback.go")
	doc := fmt.Sprintf(`{"Replace":{%q:%q}}`, target, src)
	path := filepath.Join(dir, "overlay.json")
	return path, os.WriteFile(path, []byte(doc), 0o644)
}

// CombinedOutput runs cmd and returns its stdout and stderr together, as
// exec.Cmd's does, through a file instead of a pipe: the Windows processes
// Wine starts along with the first program of a prefix (and its console
// host) inherit the pipe and hold it open, for seconds or for as long as
// the wineserver lives.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	f, err := os.CreateTemp("", "kc-agent-wine-out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if err == nil {
		err = rerr
	}
	return out, err
}

// Output runs cmd and returns its stdout and stderr, each through a file
// (see CombinedOutput for why not a pipe).
func Output(cmd *exec.Cmd) (stdout, stderr []byte, err error) {
	dir, err := os.MkdirTemp("", "kc-agent-wine-out")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return nil, nil, err
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return nil, nil, err
	}
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	err = cmd.Run()
	stdout, _ = os.ReadFile(outF.Name())
	stderr, _ = os.ReadFile(errF.Name())
	return stdout, stderr, err
}
