//go:build unix

package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/internal/bearer"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/ipc"
)

// The front mirrors a few of the core's values instead of linking them.
func TestMirrorsCore(t *testing.T) {
	if defaultProfile != config.DefaultProfile || maxMinValid != daemon.MaxMinValid ||
		agentHost != ipc.Host || pathToken != ipc.PathToken {
		t.Fatal("cmd/kc-agent's constants disagree with the core's")
	}
}

func TestParseTokenArgs(t *testing.T) {
	env := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want tokenCall
	}{
		{nil, tokenCall{profile: "default", format: "raw"}},
		{[]string{"--profile", "work", "--format=header"}, tokenCall{profile: "work", format: "header"}},
		{[]string{"-p", "work"}, tokenCall{profile: "work", format: "raw"}},
		{[]string{"-pwork"}, tokenCall{profile: "work", format: "raw"}},
		{[]string{"-p=work"}, tokenCall{profile: "work", format: "raw"}},
		{[]string{"--scope", "a", "--scope=b", "--min-valid", "2m", "--no-autostart", "--type", "access", "--format", "env"},
			tokenCall{profile: "default", scopes: []string{"a", "b"}, minValid: 2 * time.Minute, format: "env"}},
	} {
		got, ok := parseTokenArgs(c.args, env)
		if !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v %v, want %+v", c.args, got, ok, c.want)
		}
	}
	// Everything else is the core's: help, other types and formats, a
	// forced refresh, arguments, values that look like options, bad or
	// out-of-range durations, bool options with values.
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"--type", "id"}, {"--format", "json"}, {"--format", "yaml"},
		{"--force-refresh"}, {"extra"}, {"--"}, {"--profile"}, {"--profile", "--scope"},
		{"--profile="}, {"--min-valid", "25h"}, {"--min-valid", "-1s"}, {"--min-valid", "soon"},
		{"--no-autostart=false"}, {"--unknown", "x"}, {"-x"},
	} {
		if _, ok := parseTokenArgs(args, env); ok {
			t.Errorf("%q: taken by the fast path", args)
		}
	}
	got, _ := parseTokenArgs(nil, func(k string) string {
		if k == "KC_AGENT_PROFILE" {
			return "fromenv"
		}
		return ""
	})
	if got.profile != "fromenv" {
		t.Errorf("KC_AGENT_PROFILE ignored: %q", got.profile)
	}
}

// The body decodes to the request the core's client sends for the same
// call.
func TestBodyIsTheCoresRequest(t *testing.T) {
	call := tokenCall{profile: "work", scopes: []string{"openid", "api:read"}, minValid: 1500 * time.Millisecond}
	body, ok := call.body()
	if !ok {
		t.Fatal("plain values refused")
	}
	var got ipc.TokenRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	want := ipc.TokenRequest{Profile: "work", Scopes: []string{"openid", "api:read"}, MinValid: 1.5, Type: ipc.TokenTypeAccess}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []tokenCall{{profile: `a"b`}, {profile: "a", scopes: []string{`x\y`}}, {profile: "é"}, {profile: "a\nb"}} {
		if _, ok := bad.body(); ok {
			t.Errorf("%q: a value that needs escaping was written as is", bad.profile)
		}
	}
}

func TestTokenFromAnswer(t *testing.T) {
	ok200 := func(body string) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	if tok, typ, ok := tokenFromAnswer([]byte(ok200(`{"access_token": "a.b-c_d", "token_type": "Bearer", "expires_at": "2026-01-01T00:00:00Z", "expires_in": 299}` + "\n"))); !ok || tok != "a.b-c_d" || typ != "Bearer" {
		t.Fatalf("a plain answer: %v", ok)
	}
	if _, _, ok := tokenFromAnswer([]byte(ok200(`{"access_token":"a","token_type":"Bearer","expires_in":-3,"other":{"x":1e5}}`))); ok {
		t.Fatal("a nested unknown field was read")
	}
	if _, _, ok := tokenFromAnswer([]byte(ok200(`{"access_token":"a","token_type":"Bearer","expires_in":-3,"other":-1.5e+3,"z":null,"t":true}`))); !ok {
		t.Fatal("plain unknown fields refused")
	}
	for name, answer := range map[string]string{
		"401":              strings.Replace(ok200(`{"access_token":"a","token_type":"Bearer"}`), "200 OK", "401 Unauthorized", 1),
		"short body":       ok200(`{"access_token":"a","token_type":"Bearer"}`)[:60],
		"chunked":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
		"two lengths":      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
		"no token":         ok200(`{"token_type":"Bearer"}`),
		"escaped token":    ok200(`{"access_token":"a\u0022b","token_type":"Bearer"}`),
		"token with space": ok200(`{"access_token":"a b","token_type":"Bearer"}`),
		"duplicate key":    ok200(`{"access_token":"a","access_token":"b","token_type":"Bearer"}`),
		"nested":           ok200(`{"access_token":"a","token_type":"Bearer","x":{}}`),
		"trailing data":    ok200(`{"access_token":"a","token_type":"Bearer"} {}`),
		"id token only":    ok200(`{"id_token":"a","token_type":"Bearer"}`),
		"HTTP/1.0":         strings.Replace(ok200(`{"access_token":"a","token_type":"Bearer"}`), "HTTP/1.1", "HTTP/1.0", 1),
		// encoding/json matches keys in any case, the last one winning.
		"key in another case":  ok200(`{"access_token":"a","token_type":"Bearer","Access_Token":"b"}`),
		"type in another case": ok200(`{"access_token":"a","token_type":"Bearer","TOKEN_TYPE":"DPoP"}`),
		// net/http reads bare LF line ends: another head, another body.
		"bare LF":         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\n\n{}\r\n\r\n{}",
		"NUL in a header": "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
		"bad header name": "HTTP/1.1 200 OK\r\nX(y: a\r\nContent-Length: 2\r\n\r\n{}",
		"signed length":   strings.Replace(ok200(`{"access_token":"a","token_type":"Bearer"}`), "Content-Length: ", "Content-Length: +", 1),
		// What encoding/json refuses, or decodes into the wrong type.
		"number 01":           ok200(`{"access_token":"a","token_type":"Bearer","expires_in":01}`),
		"number 1.":           ok200(`{"access_token":"a","token_type":"Bearer","x":1.}`),
		"number -.5":          ok200(`{"access_token":"a","token_type":"Bearer","x":-.5}`),
		"expires_in string":   ok200(`{"access_token":"a","token_type":"Bearer","expires_in":"5"}`),
		"expires_in float":    ok200(`{"access_token":"a","token_type":"Bearer","expires_in":1.5}`),
		"expires_in too big":  ok200(`{"access_token":"a","token_type":"Bearer","expires_in":99999999999999999999}`),
		"expires_at not time": ok200(`{"access_token":"a","token_type":"Bearer","expires_at":"soon"}`),
		"expires_at month 13": ok200(`{"access_token":"a","token_type":"Bearer","expires_at":"2026-13-01T00:00:00Z"}`),
		"id_token number":     ok200(`{"access_token":"a","token_type":"Bearer","id_token":7}`),
		"access_token twice":  ok200(`{"access_token":"a","token_type":"Bearer","access_token":5}`),
		"access_token null":   ok200(`{"access_token":null,"token_type":"Bearer"}`),
		"quote in token":      ok200(`{"access_token":"a'b","token_type":"Bearer"}`),
	} {
		if _, _, ok := tokenFromAnswer([]byte(answer)); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzTokenFromAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{\"access_token\":\"a\",\"token_type\":\"Bearer\"}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		tok, typ, ok := tokenFromAnswer(answer)
		if ok && (!bearer.IsToken(tok) || !bearer.IsToken(typ) || !strings.Contains(string(answer), `"`+tok+`"`)) {
			t.Fatalf("accepted a token of %d bytes that is not one", len(tok))
		}
	})
}

// agentStub serves /v1/token on a Unix socket the way the daemon does
// (ipc.WriteJSON), in a private directory, and points KC_AGENT_SOCK at it.
func agentStub(t *testing.T, handler http.HandlerFunc) {
	t.Helper()
	ln, sock := testenv.PrivateSocket(t)
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("KC_AGENT_SOCK", sock)
}

// A token longer than net/http's chunking threshold still comes back
// with a Content-Length, and the fast path prints what the core would.
func TestFastTokenAgainstTheDaemonsWriter(t *testing.T) {
	long := strings.Repeat("x", 6000) + ".y"
	var got ipc.TokenRequest
	agentStub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ipc.PathToken || r.Method != http.MethodPost || ipc.FromBrowser(r.Header) {
			ipc.WriteError(w, &ipc.Error{Status: 400, Code: ipc.CodeBadRequest, Message: "bad"})
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		// As the daemon's handleToken writes it.
		ipc.WriteJSON(w, http.StatusOK, ipc.TokenResponse{AccessToken: long, TokenType: "Bearer", ExpiresAt: time.Now().UTC().Truncate(time.Second), ExpiresIn: 300})
	})
	out, _, res := fastToken([]string{"--profile", "work", "--format", "header"})
	if res != askOK || string(out) != "Authorization: Bearer "+long+"\n" {
		t.Fatalf("fast path: %v, %d bytes", res, len(out))
	}
	if got.Profile != "work" {
		t.Fatalf("the agent got %+v", got)
	}
}

// An error answer is the core's to report: the fast path gives up.
func TestFastTokenLeavesErrorsToTheCore(t *testing.T) {
	agentStub(t, func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteError(w, &ipc.Error{Status: 401, Code: ipc.CodeLoginRequired, Message: "log in"})
	})
	if _, _, res := fastToken(nil); res != askCore {
		t.Fatalf("an error answer: %v", res)
	}
	t.Setenv("KC_AGENT_SOCK", filepath.Join(t.TempDir(), "none", "agent.sock"))
	if _, _, res := fastToken(nil); res != askCore {
		t.Fatalf("no agent: %v", res)
	}
}

// rawAgent listens on a Unix socket in a private directory, points
// KC_AGENT_SOCK at it, and runs serve for each connection.
func rawAgent(t *testing.T, serve func(net.Conn)) {
	t.Helper()
	ln, sock := testenv.PrivateSocket(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	t.Setenv("KC_AGENT_SOCK", sock)
}

const plainAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 46\r\n\r\n{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\"}"

// An agent that keeps the connection open after a complete answer: the
// front reads up to the Content-Length and is done.
func TestAnswerReadToItsLength(t *testing.T) {
	askTimeout = 5 * time.Second
	t.Cleanup(func() { askTimeout = 60 * time.Second })
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	rawAgent(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		c.Write([]byte(plainAnswer))
		<-hold
	})
	if out, _, res := fastToken(nil); res != askOK || string(out) != "a.b.c\n" {
		t.Fatalf("%v %q", res, out)
	}
}

// One deadline for the whole exchange: an agent that drips its answer a
// byte at a time can not hold the front longer than askTimeout.
func TestDripStopsAtTheDeadline(t *testing.T) {
	askTimeout = 600 * time.Millisecond
	t.Cleanup(func() { askTimeout = 60 * time.Second })
	rawAgent(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		for i := 0; i < len(plainAnswer); i++ {
			if _, err := c.Write([]byte{plainAnswer[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if _, path, res := fastToken(nil); res != askTimedOut || path != os.Getenv("KC_AGENT_SOCK") {
		t.Fatalf("%v %q", res, path)
	}
}

// A listener whose queue is full (a stuck agent) makes connect fail at
// once, as for the core, instead of waiting for room.
func TestFullListenQueueDoesNotBlock(t *testing.T) {
	dir, _ := os.MkdirTemp("", "kcf")
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d", "agent.sock")
	os.Mkdir(filepath.Dir(sock), 0o700)
	lfd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(lfd) })
	if err := syscall.Bind(lfd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	syscall.Listen(lfd, 1) // never accepted
	for i := 0; i < 16; i++ {
		fd, _ := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		t.Cleanup(func() { syscall.Close(fd) })
		syscall.SetNonblock(fd, true)
		if syscall.Connect(fd, &syscall.SockaddrUnix{Name: sock}) != nil {
			break
		}
	}
	t.Setenv("KC_AGENT_SOCK", sock)
	if _, _, res := fastToken(nil); res != askCore {
		t.Fatalf("a full queue: %v", res)
	}
}

// buildFront builds this program into a fresh directory, with core (a
// script, or nothing) beside it as kc-agent-core.
func buildFront(t *testing.T, core string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kc-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if core != "" {
		os.WriteFile(filepath.Join(dir, coreName), []byte(core), 0o755)
	}
	return bin
}

// Everything the fast path does not answer reaches kc-agent-core with the
// same arguments, and the core's exit code is the caller's.
func TestEverythingElseGoesToTheCore(t *testing.T) {
	got := filepath.Join(t.TempDir(), "args")
	bin := buildFront(t, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \""+got+"\"\nexit 7\n")
	t.Setenv("KC_AGENT_SOCK", filepath.Join(t.TempDir(), "none", "agent.sock"))
	for _, args := range [][]string{
		{"version"}, {"token", "--help"}, {"token"}, {"token", "--type", "id"}, {"run", "--log-level", "debug"}, {},
	} {
		os.Remove(got)
		err := exec.Command(bin, args...).Run()
		ee, _ := err.(*exec.ExitError)
		if ee == nil || ee.ExitCode() != 7 {
			t.Errorf("%q: %v, want the core's exit 7", args, err)
		}
		data, _ := os.ReadFile(got)
		if want := strings.Join(args, "\n"); strings.TrimSuffix(string(data), "\n") != want {
			t.Errorf("%q: the core got %q", args, data)
		}
	}
}

// The fast path needs no core; without one, anything else says what is
// missing and how to fix it.
func TestWithoutCore(t *testing.T) {
	bin := buildFront(t, "")
	agentStub(t, func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteJSON(w, http.StatusOK, ipc.TokenResponse{AccessToken: "a.b.c", TokenType: "Bearer"})
	})
	out, err := exec.Command(bin, "token").Output()
	if err != nil || string(out) != "a.b.c\n" {
		t.Fatalf("fast path without a core: %v %q", err, out)
	}
	out, err = exec.Command(bin, "status").CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 1 || !strings.Contains(string(out), "kc-agent-core is missing") || !strings.Contains(string(out), "hint: ") {
		t.Fatalf("without a core: %v %s", err, out)
	}
}
