//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop/tpmkey"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/internal/testenv/swtpm"
)

// envVars are where a cliEnv lives: switching between two envs of one
// test (in-process CLI and agents share the process environment).
var envVars = []string{"KC_AGENT_CONFIG", "KC_AGENT_STATE_DIR", "KC_AGENT_SOCK", store.TPMEnv}

func saveEnv() map[string]string {
	m := map[string]string{}
	for _, k := range envVars {
		m[k] = os.Getenv(k)
	}
	return m
}

func restoreEnv(t *testing.T, m map[string]string) {
	for k, v := range m {
		t.Setenv(k, v)
	}
}

// Issue 29, hardware keys: with dpop_key: tpm the login's key is made in
// the TPM (swtpm here), and the login is bound to it. Another user who
// copies the whole state directory and the keychain (or the file store)
// into their own home, on a machine with another TPM, can't refresh: a
// login-required error that names the other TPM, the same on a second
// try. The original login still refreshes with its TPM.
func TestDPoPTPMKeyStaysOnItsMachine(t *testing.T) {
	for _, kind := range []string{config.StoreFile, config.StoreKeychain} {
		t.Run(kind, func(t *testing.T) {
			if kind == config.StoreKeychain {
				testenv.SecretService(t)
			}
			tpmBoundLogin(t, kind)
		})
	}
}

func tpmBoundLogin(t *testing.T, kind string) {
	t.Setenv(store.TPMEnv, swtpm.Start(t).Device)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, true)
	e.writeProfile(config.Profile{Issuer: kc.Issuer(realm), Store: kind, DPoP: config.DPoPOn, DPoPKey: config.DPoPKeyTPM})
	e.login(realm, "carol", "carol-pw")
	_, key := e.checkBound()
	if _, ok := key.(*tpmkey.Key); !ok {
		t.Fatalf("dpop_key: tpm stored a %T, not a TPM key", key)
	}
	agent := e.startAgent()
	if _, code, stderr := e.tokenJSON("--force-refresh"); code != 0 {
		t.Fatalf("the agent's refresh with the TPM key: exit %d: %s", code, stderr)
	}
	e.checkDoctor("cnf.jkt matches the stored key, a key in this machine's TPM")
	agent.stop()
	home := saveEnv()

	// Another user, another machine: a copy of the config and state
	// directories in a home of their own (and, for the keychain, the same
	// items), and a TPM of their own.
	thief := newCLIEnv(t)
	thief.profile = e.profile
	for _, d := range []string{"config", "state"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(e.dir, d), thief.dir).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", d, err, out)
		}
	}
	t.Setenv(store.TPMEnv, swtpm.Start(t).Device)
	stolen := thief.startAgent()
	for try := 1; try <= 2; try++ {
		_, code, stderr := thief.tokenJSON("--force-refresh")
		if code != exitLoginRequired || !strings.Contains(stderr, "made by another TPM") || !strings.Contains(stderr, "kc-agent login") {
			t.Fatalf("try %d: a copy of the login on another machine's TPM: exit %d:\n%s", try, code, stderr)
		}
	}
	stolen.stop()
	// No loop: the agent said login required for the requests it was
	// asked, and tried nothing more by itself.
	if n := strings.Count(stolen.log.String(), `msg="login required"`); n < 1 || n > 2 {
		t.Errorf("the agent with the copy logged %d login-required lines for 2 requests", n)
	}

	restoreEnv(t, home)
	agent = e.startAgent()
	if _, code, stderr := e.tokenJSON("--force-refresh"); code != 0 {
		t.Fatalf("the original's refresh after the copy failed elsewhere: exit %d: %s", code, stderr)
	}
	e.checkBound()
	agent.stop()
	if code, _, stderr := e.run("logout", "--profile", e.profile); code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
}

// dpop_key: tpm on a machine without a usable TPM fails the login before
// the browser step, says why and what to set instead, and stores nothing.
func TestDPoPKeyTPMWithoutATPM(t *testing.T) {
	testenv.SecretService(t)
	t.Setenv(store.TPMEnv, "/nonexistent/tpmrm0")
	e := newCLIEnv(t)
	e.writeProfile(config.Profile{Issuer: e.keycloak().Issuer(keycloak.RealmTest), DPoP: config.DPoPOn, DPoPKey: config.DPoPKeyTPM})
	openURLHook = func(string) error {
		t.Error("the browser was opened for a login that can't be bound")
		return nil
	}
	code, _, stderr := e.run("login", "--profile", e.profile, "--timeout", "20s")
	if code == 0 || !strings.Contains(stderr, "dpop_key: tpm") || !strings.Contains(stderr, "/nonexistent/tpmrm0") || !strings.Contains(stderr, "set dpop_key: auto") {
		t.Fatalf("login with dpop_key: tpm and no TPM: exit %d:\n%s", code, stderr)
	}
	if _, err := e.stored(); err == nil {
		t.Fatal("a failed login stored something")
	}
}
