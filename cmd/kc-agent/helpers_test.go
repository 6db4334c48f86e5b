//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// cliEnv is one isolated kc-agent installation: its own config, state
// directory, socket path and a profile name no other test uses.
type cliEnv struct {
	t       *testing.T
	dir     string
	profile string
	kc      *keycloak.Server

	mu      sync.Mutex
	outputs []string // every stdout/stderr, for the token leak check
	secrets []string // every token value seen, that must never be printed
}

var profileSeq int

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config", "config.yaml"))
	t.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	// A short path: Unix socket paths are limited to ~100 bytes.
	sockDir, err := os.MkdirTemp("", "kca")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	t.Setenv("KC_AGENT_SOCK", filepath.Join(sockDir, "s", "agent.sock"))
	t.Setenv("KC_AGENT_PROFILE", "")
	t.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	t.Setenv("BROWSER", "true") // a browser "exists"; openURLHook does the work
	oidc.ForgetDiscovery()
	profileSeq++
	e := &cliEnv{t: t, dir: dir, profile: fmt.Sprintf("t%d-%d", os.Getpid(), profileSeq)}
	t.Cleanup(e.checkNoTokens)
	t.Cleanup(func() {
		openURLHook = nil
		// Leave no keychain items behind.
		if p, ok := e.loadProfile(); ok {
			if st, err := store.ForProfile(p, nil); err == nil {
				st.Delete(context.Background(), e.profile)
			}
		}
	})
	return e
}

func (e *cliEnv) keycloak() *keycloak.Server {
	if e.kc == nil {
		e.kc = testenv.Keycloak(e.t)
	}
	return e.kc
}

// run runs the CLI in-process and records its output.
func (e *cliEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	e.mu.Lock()
	// A token on the stdout of `token` is the point of the command; every
	// other output (and token's stderr) must be free of tokens.
	if len(args) > 0 && args[0] == "token" {
		e.outputs = append(e.outputs, errb.String())
	} else {
		e.outputs = append(e.outputs, out.String(), errb.String())
	}
	e.mu.Unlock()
	return code, out.String(), errb.String()
}

func (e *cliEnv) addSecret(s string) {
	if s != "" {
		e.mu.Lock()
		e.secrets = append(e.secrets, s)
		e.mu.Unlock()
	}
}

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}`)

// checkNoTokens fails the test when any output holds a token. The failure
// message names where, never the token itself.
func (e *cliEnv) checkNoTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, out := range e.outputs {
		if jwtLike.MatchString(out) {
			e.t.Errorf("output #%d contains something shaped like a JWT", i)
		}
		for _, s := range e.secrets {
			if len(s) > 8 && strings.Contains(out, s) {
				e.t.Errorf("output #%d contains a token value", i)
			}
		}
	}
}

func (e *cliEnv) loadProfile() (config.Profile, bool) {
	path, _ := config.FilePath()
	cfg, err := config.Load(path)
	if err != nil {
		return config.Profile{}, false
	}
	return cfg.Profile(e.profile)
}

// stored returns the stored record of the env's profile.
func (e *cliEnv) stored() (store.Record, error) {
	p, ok := e.loadProfile()
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	st, err := store.ForProfile(p, nil)
	if err != nil {
		return store.Record{}, err
	}
	rec, err := st.Get(context.Background(), e.profile)
	if err == nil {
		e.addSecret(rec.RefreshToken)
	}
	return rec, err
}

// browse makes openURLHook drive Keycloak's pages with b, in the background
// like a real browser; the returned func waits for it and returns its error.
func browse(b *keycloak.FormBrowser) func() error {
	done := make(chan error, 1)
	openURLHook = func(u string) error {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := b.Visit(ctx, u)
			done <- err
		}()
		return nil
	}
	return func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("browser never finished")
		}
	}
}

// login logs the env's profile in to realm as user via the form browser.
func (e *cliEnv) login(realm, user, password string, extra ...string) {
	e.t.Helper()
	wait := browse(keycloak.NewFormBrowser(user, password))
	args := append([]string{"login", e.keycloak().Issuer(realm), "--profile", e.profile, "--timeout", "60s"}, extra...)
	code, _, stderr := e.run(args...)
	if code != 0 {
		e.t.Fatalf("login exited %d: %s", code, stderr)
	}
	if err := wait(); err != nil {
		e.t.Fatalf("browser: %v", err)
	}
	if _, err := e.stored(); err != nil {
		e.t.Fatalf("nothing stored after login: %v", err)
	}
}

// buildBinary builds the real program, for tests that run it as processes
// of their own, and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "kc-agent")
}

// record keeps an output for the token leak check (checkNoTokens).
func (e *cliEnv) record(out string) {
	e.mu.Lock()
	e.outputs = append(e.outputs, out)
	e.mu.Unlock()
}

// storedAs returns the stored record of another profile of the env.
func (e *cliEnv) storedAs(name string) store.Record {
	e.t.Helper()
	saved := e.profile
	e.profile = name
	defer func() { e.profile = saved }()
	rec, err := e.stored()
	if err != nil {
		e.t.Fatalf("no stored login for profile %q: %v", name, err)
	}
	return rec
}
