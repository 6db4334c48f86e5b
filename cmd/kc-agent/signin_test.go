//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// configureProfile writes the env's profile (issuer of realm) into the
// user's config without logging in: the agent signs it in.
func (e *cliEnv) configureProfile(realm string) {
	e.t.Helper()
	path, _ := config.FilePath()
	os.MkdirAll(filepath.Dir(path), 0o700)
	data := fmt.Sprintf("profiles:\n  %s:\n    issuer: %s\n", e.profile, e.keycloak().Issuer(realm))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// approveDevice signs in as user on the device flow's page, as from a
// phone, and checks that Keycloak took the approval.
func approveDevice(b *keycloak.FormBrowser, uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := b.Visit(ctx, uri)
	if err != nil {
		return err
	}
	if !strings.Contains(res.URL, "/device/status") {
		return errors.New("device approval ended at " + res.URL)
	}
	return nil
}

// waitSignIn long-polls a sign-in until it ends.
func waitSignIn(t *testing.T, c *ipc.Client, id string) *ipc.LoginStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := c.LoginStatus(context.Background(), id, 10*time.Second)
		if err != nil {
			t.Fatalf("sign-in status: %v", err)
		}
		if st.State != ipc.LoginPending {
			return st
		}
	}
	t.Fatal("the sign-in never ended")
	return nil
}

// The agent runs a device sign-in for a configured profile: callers join
// it, status shows it, the QR comes as SVG, and once approved the login is
// stored and served at once.
func TestAgentSignInDevice(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	c := agent.client
	ctx := context.Background()

	if _, code, _ := e.tokenJSON(); code != exitLoginRequired {
		t.Fatalf("token before sign-in: exit %d", code)
	}
	st, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowDevice})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != ipc.LoginPending || st.ID == "" || st.UserCode == "" || !strings.Contains(st.VerificationURIComplete, "user_code=") ||
		st.VerificationURI == "" || st.Interval <= 0 || time.Until(st.ExpiresAt) < time.Minute || !strings.HasPrefix(st.QRSVG, "<svg") {
		t.Fatalf("start answer: %+v", st)
	}
	// A second caller joins, whatever flow it asks for.
	st2, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowBrowser})
	if err != nil || st2.ID != st.ID || !st2.Joined || st2.Flow != ipc.FlowDevice {
		t.Fatalf("second start: %+v %v", st2, err)
	}
	code, out, _ := e.run("status")
	if !strings.Contains(out, "sign-in "+e.profile) || !strings.Contains(out, st.VerificationURIComplete) || !strings.Contains(out, "left") {
		t.Errorf("status (exit %d) does not show the sign-in:\n%s", code, out)
	}
	// The QR as an image of its own.
	resp := socketGet(t, c.Path, ipc.PathLogin+"/"+st.ID+"/qr.svg")
	if resp.status != 200 || resp.ctype != "image/svg+xml" || resp.body != st.QRSVG {
		t.Errorf("qr.svg: %d %s", resp.status, resp.ctype)
	}
	// A short poll of a pending sign-in answers pending.
	if p, err := c.LoginStatus(ctx, st.ID, 100*time.Millisecond); err != nil || p.State != ipc.LoginPending {
		t.Fatalf("poll: %+v %v", p, err)
	}

	if err := approveDevice(keycloak.NewFormBrowser("oscar", "oscar-pw"), st.VerificationURIComplete); err != nil {
		t.Fatal(err)
	}
	end := waitSignIn(t, c, st.ID)
	if end.State != ipc.LoginDone || end.Identity == nil || end.Identity.PreferredUsername != "oscar" || end.Identity.Subject == "" || end.Identity.Email == "" {
		t.Fatalf("end: %+v", end)
	}
	tok, code, stderr := e.tokenJSON()
	if code != 0 || tok.AccessToken == "" {
		t.Fatalf("token after the agent's sign-in: exit %d: %s", code, stderr)
	}
	rec, err := e.stored()
	if err != nil || rec.Username != "oscar" {
		t.Fatalf("stored: %v %v", rec.Username, err)
	}
	// The config was not touched: the profile came from it.
	if !strings.Contains(agent.log.String(), "sign-in started") || !strings.Contains(agent.log.String(), "sign-in done") {
		t.Errorf("log lacks the sign-in:\n%s", agent.log.String())
	}
	if strings.Contains(agent.log.String(), st.UserCode) {
		t.Error("the log shows the user code")
	}
}

// Denied at the consent page, and a device code that expires (the short
// realm's device codes live 3 s): the sign-in says which, and nothing is
// stored.
func TestAgentSignInDeniedAndExpired(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	c := agent.client
	ctx := context.Background()

	st, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	b := keycloak.NewFormBrowser("oscar", "oscar-pw")
	b.Deny = true
	ctxv, cancel := context.WithTimeout(ctx, time.Minute)
	b.Visit(ctxv, st.VerificationURIComplete)
	cancel()
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginDenied {
		t.Fatalf("denied: %+v", end)
	}

	// Expiry through the agent's own limit.
	daemon.SignInLifetime = 2 * time.Second
	t.Cleanup(func() { daemon.SignInLifetime = 0 })
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginExpired {
		t.Fatalf("expired: %+v", end)
	}
	if _, err := e.stored(); err == nil {
		t.Fatal("something was stored")
	}

	// Cancelled by a caller.
	daemon.SignInLifetime = 0
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelLogin(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginCancelled {
		t.Fatalf("cancelled: %+v", end)
	}

	// An unknown profile names itself; an issuer can not be smuggled in.
	_, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: "nosuch"})
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Code != ipc.CodeUnknown || !strings.Contains(ae.Message, `"nosuch"`) {
		t.Fatalf("unknown profile: %v", err)
	}
	r := socketDo(t, c.Path, http.MethodPost, ipc.PathLogin, `{"profile":"`+e.profile+`","issuer":"https://evil.example.com/realms/x"}`)
	if r.status != 400 {
		t.Fatalf("a request with an issuer: %d %s", r.status, r.body)
	}

	// Starting is rate-limited (joining is not).
	old := daemon.SignInsPerWindow
	daemon.SignInsPerWindow = 4 // three started above
	t.Cleanup(func() { daemon.SignInsPerWindow = old })
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile}); err != nil {
		t.Fatalf("joining counts against the limit: %v", err)
	}
	c.CancelLogin(ctx, st.ID)
	_, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if !errors.As(err, &ae) || ae.Code != ipc.CodeRateLimited || ae.Status != 429 {
		t.Fatalf("fifth start: %v", err)
	}
}

// The browser flow through the agent, in headless Chromium: the agent's
// own loopback listener gets the redirect.
func TestAgentSignInBrowserChromium(t *testing.T) {
	testenv.SecretService(t)
	chromium := testenv.Chromium(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	st, err := agent.client.StartLogin(context.Background(), ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowBrowser})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.AuthorizationURL, "code_challenge_method=S256") || !strings.Contains(st.AuthorizationURL, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") || st.UserCode != "" {
		t.Fatalf("start: %+v", st)
	}
	if err := chromium.SignIn(st.AuthorizationURL, "dave", "dave-pw"); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	end := waitSignIn(t, agent.client, st.ID)
	if end.State != ipc.LoginDone || end.Identity.PreferredUsername != "dave" {
		t.Fatalf("end: %+v", end)
	}
	if _, code, stderr := e.tokenJSON(); code != 0 {
		t.Fatalf("token: %d %s", code, stderr)
	}
}

type socketAnswer struct {
	status int
	ctype  string
	body   string
}

func socketDo(t *testing.T, sock, method, path, body string) socketAnswer {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		return dialUnix(ctx, sock)
	}}}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+ipc.Host+path, rd)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return socketAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(data)}
}

func socketGet(t *testing.T, sock, path string) socketAnswer {
	return socketDo(t, sock, http.MethodGet, path, "")
}

type netConn = net.Conn

func dialUnix(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}
