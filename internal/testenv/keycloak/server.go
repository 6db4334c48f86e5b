//go:build unix

// Package keycloak runs a real Keycloak for tests and the demo: it fetches
// org.keycloak:keycloak-quarkus-dist through Maven once per machine, starts
// it on a free loopback port with the realms in realms/ imported, and shares
// one server between all test packages of a run. The shipped binary never
// imports it.
package keycloak

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version is the pinned Keycloak release.
const Version = "26.7.3"

//go:embed realms/*.json
var realmFiles embed.FS

// Realm names imported into every server.
const (
	RealmDemo     = "demo"
	RealmTest     = "kcagent-test"
	RealmShort    = "kcagent-short"
	RealmRotation = "kcagent-rotation"
	RealmReuse    = "kcagent-reuse" // rotation with one reuse allowed
)

// CacheDir holds the zip, the unpacked server and the running instance's
// state: $KC_AGENT_TEST_CACHE, else ~/.cache/kc-agent-test.
func CacheDir() (string, error) {
	if d := os.Getenv("KC_AGENT_TEST_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "kc-agent-test"), nil
}

// Server is a running Keycloak.
type Server struct {
	BaseURL string `json:"base_url"`
	Realms  string `json:"realms"` // hash of the imported realm files
	PID     int    `json:"pid"`
	Dir     string `json:"dir"`
	Log     string `json:"log"`
}

// Issuer is the issuer URL of a realm on this server.
func (s *Server) Issuer(realm string) string { return s.BaseURL + "/realms/" + realm }

// Ensure returns the shared server, starting it when none is running.
// $KC_AGENT_TEST_KEYCLOAK (a base URL) points at one started elsewhere.
func Ensure(ctx context.Context, logf func(string, ...any)) (*Server, error) {
	if u := os.Getenv("KC_AGENT_TEST_KEYCLOAK"); u != "" {
		s := &Server{BaseURL: strings.TrimRight(u, "/")}
		return s, waitReady(ctx, s, 2*time.Minute)
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(cache, "server.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	statePath := filepath.Join(cache, "server.json")
	if s, err := readState(statePath); err == nil && processAlive(s.PID) && s.Realms == realmsHash() {
		if err := waitReady(ctx, s, 3*time.Minute); err == nil {
			return s, nil
		}
		_ = syscall.Kill(s.PID, syscall.SIGKILL)
	}
	dist, err := unpack(ctx, cache, logf)
	if err != nil {
		return nil, err
	}
	if old, err := readState(statePath); err == nil && processAlive(old.PID) {
		logf("restarting Keycloak: the realm files changed")
		_ = syscall.Kill(-old.PID, syscall.SIGTERM)
		for i := 0; i < 100 && processAlive(old.PID); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-old.PID, syscall.SIGKILL)
	}
	s, err := start(ctx, dist, logf, true)
	if err != nil {
		return nil, err
	}
	s.Realms = realmsHash()
	data, _ := json.Marshal(s)
	if err := os.WriteFile(statePath, data, 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop stops the shared server, if one runs.
func Stop() error {
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	statePath := filepath.Join(cache, "server.json")
	s, err := readState(statePath)
	if err != nil {
		return nil
	}
	os.Remove(statePath)
	if processAlive(s.PID) {
		_ = syscall.Kill(-s.PID, syscall.SIGTERM)
		for i := 0; i < 100 && processAlive(s.PID); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-s.PID, syscall.SIGKILL)
	}
	return nil
}

func realmsHash() string {
	h := sha256.New()
	fs.WalkDir(realmFiles, "realms", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := realmFiles.ReadFile(p)
			h.Write([]byte(p))
			h.Write(data)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func readState(path string) (*Server, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Server
	if err := json.Unmarshal(data, &s); err != nil || s.PID == 0 {
		return nil, errors.New("bad state file")
	}
	return &s, nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie still answers kill(0); check its state.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(data))
	return len(fields) < 3 || fields[2] != "Z"
}

func lockFile(path string) (func(), error) {
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

// zipPath fetches the distribution with Maven (once) and returns its path.
func zipPath(ctx context.Context, logf func(string, ...any)) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	repo := filepath.Join(home, ".m2", "repository")
	if r := os.Getenv("KC_AGENT_M2_REPO"); r != "" {
		repo = r
	}
	p := filepath.Join(repo, "org", "keycloak", "keycloak-quarkus-dist", Version, "keycloak-quarkus-dist-"+Version+".zip")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	logf("fetching org.keycloak:keycloak-quarkus-dist:%s with Maven (about 180 MB, once per machine)", Version)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "dependency:get",
		"-Dartifact=org.keycloak:keycloak-quarkus-dist:"+Version+":zip", "-Dtransitive=false",
		"-Dmaven.repo.local="+repo)
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mvn dependency:get failed: %v\n%s", err, out)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("maven finished but %s is missing", p)
	}
	return p, nil
}

func unpack(ctx context.Context, cache string, logf func(string, ...any)) (string, error) {
	dist := filepath.Join(cache, "keycloak-"+Version)
	if _, err := os.Stat(filepath.Join(dist, "bin", "kc.sh")); err == nil {
		return dist, nil
	}
	zp, err := zipPath(ctx, logf)
	if err != nil {
		return "", err
	}
	logf("unpacking %s", zp)
	tmp := dist + ".tmp"
	os.RemoveAll(tmp)
	zr, err := zip.OpenReader(zp)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	for _, f := range zr.File {
		// The zip holds one top-level folder keycloak-<version>/.
		name := f.Name
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		if name == "" || strings.Contains(name, "..") {
			continue
		}
		target := filepath.Join(tmp, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		if err := extract(f, target); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dist); err != nil {
		return "", err
	}
	return dist, nil
}

func extract(f *zip.File, target string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	mode := f.Mode().Perm()
	if strings.HasSuffix(target, ".sh") {
		mode |= 0o755
	}
	if mode == 0 {
		mode = 0o644
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Restart stops the shared server (SIGTERM, as an operator's restart would;
// dev-mode H2 loses recent offline sessions on SIGKILL) and starts it again
// on the same port with its database kept, for fault tests.
func Restart(ctx context.Context, s *Server, logf func(string, ...any)) (*Server, error) {
	Terminate(s)
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	ns, err := startOn(ctx, s.Dir, logf, false, portOf(s.BaseURL))
	if err != nil {
		return nil, err
	}
	ns.Realms = realmsHash()
	data, _ := json.Marshal(ns)
	return ns, os.WriteFile(filepath.Join(cache, "server.json"), data, 0o644)
}

// Terminate stops the server and waits for it.
func Terminate(s *Server) {
	_ = syscall.Kill(-s.PID, syscall.SIGTERM)
	for i := 0; i < 600 && processAlive(s.PID); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-s.PID, syscall.SIGKILL)
}

func portOf(baseURL string) int {
	i := strings.LastIndexByte(baseURL, ':')
	p, _ := strconv.Atoi(baseURL[i+1:])
	return p
}

func start(ctx context.Context, dist string, logf func(string, ...any), fresh bool) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startOn(ctx, dist, logf, fresh, port)
}

func startOn(ctx context.Context, dist string, logf func(string, ...any), fresh bool, port int) (*Server, error) {
	// A fresh database each start: --import-realm skips realms that exist.
	if fresh {
		os.RemoveAll(filepath.Join(dist, "data"))
	}
	imp := filepath.Join(dist, "data", "import")
	if err := os.MkdirAll(imp, 0o755); err != nil {
		return nil, err
	}
	err := fs.WalkDir(realmFiles, "realms", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := realmFiles.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(imp, filepath.Base(p)), data, 0o644)
	})
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(filepath.Dir(dist), "keycloak.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(dist, "bin", "kc.sh"), "start-dev",
		"--http-host=127.0.0.1", "--http-port="+strconv.Itoa(port),
		"--hostname-strict=false", "--import-realm", "--cache=local")
	cmd.Env = append(os.Environ(),
		"KC_BOOTSTRAP_ADMIN_USERNAME=admin", "KC_BOOTSTRAP_ADMIN_PASSWORD=admin",
		"JAVA_OPTS_KC_HEAP=-Xms64m -Xmx512m")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so it outlives this test binary and is shared
	// by the other packages; Stop (or `make keycloak-stop`) ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf("starting Keycloak %s on 127.0.0.1:%d (log: %s)", Version, port, logPath)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go cmd.Wait()
	s := &Server{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), PID: cmd.Process.Pid, Dir: dist, Log: logPath}
	if err := waitReady(ctx, s, 4*time.Minute); err != nil {
		_ = syscall.Kill(-s.PID, syscall.SIGKILL)
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return nil, fmt.Errorf("keycloak did not become ready: %v\n%s", err, tail)
	}
	return s, nil
}

func waitReady(ctx context.Context, s *Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	realms := []string{RealmDemo, RealmTest, RealmShort, RealmRotation, RealmReuse}
	for {
		ok := true
		for _, r := range realms {
			req, _ := http.NewRequestWithContext(ctx, "GET", s.Issuer(r)+"/.well-known/openid-configuration", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				ok = false
				if resp != nil {
					resp.Body.Close()
				}
				break
			}
			resp.Body.Close()
		}
		if ok {
			return nil
		}
		if s.PID != 0 && !processAlive(s.PID) {
			return errors.New("keycloak exited")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
