//go:build unix

package ipc

import (
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// rawAgent answers every connection on a fresh private socket with answer,
// as written, and returns a client for it.
func rawAgent(t *testing.T, answer string) *Client {
	t.Helper()
	ln, sock := testenv.PrivateSocket(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Write([]byte(answer))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	return NewClientAt(sock)
}

func answer200(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// A token a shell, a header line or git would read differently is never
// handed on, and the error does not show it.
func TestTokenMustBeABearerToken(t *testing.T) {
	for _, tok := range []string{`tok'$(id)'`, "tok en", `tok\nInjected: x`, "tok;x"} {
		c := rawAgent(t, answer200(`{"access_token":"`+tok+`","token_type":"Bearer"}`))
		_, err := c.Token(context.Background(), TokenRequest{Profile: "p"})
		if err == nil || strings.Contains(err.Error(), tok) {
			t.Errorf("%q: %v", tok, err)
		}
	}
	c := rawAgent(t, answer200(`{"access_token":"a.b.c","token_type":"Bearer x"}`))
	if _, err := c.Token(context.Background(), TokenRequest{Profile: "p"}); err == nil {
		t.Error("a token type with a space was accepted")
	}
}

// An access request answered with only an ID token is an error, not an
// empty line.
func TestAccessRequestNeedsAnAccessToken(t *testing.T) {
	c := rawAgent(t, answer200(`{"id_token":"a.b.c","token_type":"Bearer"}`))
	if _, err := c.Token(context.Background(), TokenRequest{Profile: "p"}); err == nil {
		t.Fatal("no access token, and no error")
	}
}

// Bytes an agent sends after its answer are never logged: net/http logs
// what arrives on an idle connection, and that could be a token.
func TestBytesAfterTheAnswerAreNotLogged(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	ln, sock := testenv.PrivateSocket(t)
	// The sentinel: the agent's end sees the client close the connection.
	// After that nothing can arrive on it, so nothing more can be logged;
	// a client that kept it open would be reading (and logging) the bytes.
	closed := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Read(make([]byte, 4096))
		c.Write([]byte(answer200(`{"access_token":"a.b.c","token_type":"Bearer"}`) + `{"access_token":"SECRET.TOKEN.VALUE"}`))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		closed <- err == nil
	}()
	if _, err := NewClientAt(sock).Token(context.Background(), TokenRequest{Profile: "p"}); err != nil {
		t.Fatal(err)
	}
	if !<-closed {
		t.Error("the client kept the connection open after the answer")
	}
	if strings.Contains(logged.String(), "SECRET") {
		t.Fatalf("logged: %d bytes with the token", logged.Len())
	}
}
