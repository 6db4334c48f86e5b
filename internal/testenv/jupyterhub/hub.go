//go:build linux

// Package jupyterhub runs a real multi-user JupyterHub for tests: JupyterHub
// from PyPI with configurable-http-proxy from npm (installed once per
// machine by scripts/install-jupyterhub.sh), its default PAMAuthenticator
// and LocalProcessSpawner, Linux users created for the test, and a client
// for the hub's REST API and the kernels' websocket protocol. It needs root
// (useradd, spawning as the users). The shipped binary never imports it.
package jupyterhub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Install makes sure the pinned JupyterHub and configurable-http-proxy are
// installed and returns their directory (venv/ and chp/ inside).
func Install(ctx context.Context) (string, error) {
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "..", "..", "scripts", "install-jupyterhub.sh")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// LockRun serializes test runs on this machine: they share the installed
// virtualenv (each installs the current kc-agent-client into it) and the
// UserPrefix user names. The returned func unlocks.
func LockRun(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(filepath.Dir(dir), ".jupyterhub-run.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Options shape the hub.
type Options struct {
	Install string            // from Install
	Dir     string            // a root-owned 0755 directory for the hub's files
	Path    []string          // directories first on the users' PATH
	Env     map[string]string // Spawner.environment
	Users   []string          // allowed users
}

// Hub is a running JupyterHub.
type Hub struct {
	URL   string // the public URL (configurable-http-proxy)
	Log   string // the hub's log file
	token string // the test service's API token
	cmd   *exec.Cmd
	hc    *http.Client
}

// Start runs JupyterHub and waits until its API answers.
func Start(ctx context.Context, o Options) (*Hub, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	state := filepath.Join(o.Dir, "hub")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	h := &Hub{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), Log: filepath.Join(state, "jupyterhub.log"),
		token: randomHex(24), hc: &http.Client{Timeout: 60 * time.Second}}
	cfg := filepath.Join(state, "jupyterhub_config.py")
	if err := os.WriteFile(cfg, []byte(hubConfig(o, state, ports)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(h.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	venvBin := filepath.Join(o.Install, "venv", "bin")
	h.cmd = exec.Command(filepath.Join(venvBin, "jupyterhub"), "-f", cfg)
	h.cmd.Dir = state
	// The users' servers inherit PATH and the locale (LocalProcessSpawner's
	// env_keep), nothing else of this environment: no session bus.
	h.cmd.Env = []string{
		"PATH=" + strings.Join(append(append([]string(nil), o.Path...), venvBin, "/usr/local/bin", "/usr/bin", "/bin"), ":"),
		"LANG=C.UTF-8", "HOME=" + state,
		"KC_TEST_HUB_SERVICE_TOKEN=" + h.token, "CONFIGPROXY_AUTH_TOKEN=" + randomHex(24),
	}
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		var info map[string]any
		if err := h.api(ctx, "GET", "/hub/api/", nil, &info); err == nil {
			return h, nil
		}
		if time.Now().After(deadline) || h.cmd.ProcessState != nil {
			h.Stop()
			return nil, fmt.Errorf("JupyterHub did not answer within 90 s; its log: %s", tail(h.Log))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// hubConfig is jupyterhub_config.py: PAM (the default authenticator),
// LocalProcessSpawner (the default spawner) and a service with an API token
// that may manage and reach the users' servers.
func hubConfig(o Options, state string, ports []int) string {
	env, _ := json.Marshal(o.Env)
	users, _ := json.Marshal(o.Users)
	return fmt.Sprintf(`import json, os
c = get_config()
c.JupyterHub.bind_url = "http://127.0.0.1:%d"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.command = [%q]
c.JupyterHub.db_url = "sqlite:///" + %q
c.JupyterHub.cookie_secret_file = %q
c.JupyterHub.pid_file = %q
c.Authenticator.allowed_users = set(json.loads(%q))
c.Spawner.cmd = [%q]
c.Spawner.environment = json.loads(%q)
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.JupyterHub.services = [{"name": "kc-agent-test", "api_token": os.environ["KC_TEST_HUB_SERVICE_TOKEN"]}]
c.JupyterHub.load_roles = [{"name": "kc-agent-test", "services": ["kc-agent-test"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"]}]
`, ports[0], ports[1], ports[2],
		filepath.Join(o.Install, "chp", "node_modules", ".bin", "configurable-http-proxy"),
		filepath.Join(state, "jupyterhub.sqlite"), filepath.Join(state, "cookie_secret"), filepath.Join(state, "jupyterhub.pid"),
		string(users), filepath.Join(o.Install, "venv", "bin", "jupyterhub-singleuser"), string(env))
}

// Stop ends the hub, the proxy and the servers it spawned: SIGTERM to the
// hub (it stops its servers and the proxy), then SIGKILL to its process
// group.
func (h *Hub) Stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// api calls the hub's REST API as the test service.
func (h *Hub) api(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+h.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// APIError is a REST call the hub (or a user's server) refused.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %.300s", e.Method, e.Path, e.Status, e.Body)
}

// StartServer starts the user's default server (POST
// /hub/api/users/<name>/server) and waits until it is ready.
func (h *Hub) StartServer(ctx context.Context, name string) error {
	if err := h.api(ctx, "POST", "/hub/api/users/"+url.PathEscape(name)+"/server", nil, nil); err != nil {
		return err
	}
	return h.waitServer(ctx, name, true)
}

// StopServer stops the user's server, as the culler does (DELETE
// /hub/api/users/<name>/server), and waits until it is gone.
func (h *Hub) StopServer(ctx context.Context, name string) error {
	if err := h.api(ctx, "DELETE", "/hub/api/users/"+url.PathEscape(name)+"/server", nil, nil); err != nil {
		return err
	}
	return h.waitServer(ctx, name, false)
}

func (h *Hub) waitServer(ctx context.Context, name string, ready bool) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var u struct {
			Servers map[string]struct {
				Ready bool `json:"ready"`
			} `json:"servers"`
		}
		err := h.api(ctx, "GET", "/hub/api/users/"+url.PathEscape(name), nil, &u)
		s, running := u.Servers[""]
		if err == nil && ((ready && running && s.Ready) || (!ready && !running)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s's server not %s after 2 minutes (last error: %v); the hub's log: %s",
				name, map[bool]string{true: "ready", false: "stopped"}[ready], err, tail(h.Log))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

var xsrfRe = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// PAMLogin signs in at the hub's login form as a browser would and reports
// whether the hub accepted the password (PAMAuthenticator).
func (h *Hub) PAMLogin(ctx context.Context, name, password string) (bool, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, "GET", h.URL+"/hub/login", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := xsrfRe.FindSubmatch(page)
	if m == nil {
		return false, fmt.Errorf("no _xsrf field on the hub's login page (HTTP %d)", resp.StatusCode)
	}
	form := url.Values{"username": {name}, "password": {password}, "_xsrf": {string(m[1])}}
	req, _ = http.NewRequestWithContext(ctx, "POST", h.URL+"/hub/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = hc.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	// Accepted: a redirect into the hub with the login cookie set.
	// Refused: the form again (403).
	return resp.StatusCode == http.StatusFound, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail is the end of a log file, for failure messages. The hub's log holds
// no kc-agent tokens (it never sees them).
func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
