//go:build unix

// Command tokenfloor is the least a Go program can do to get a token from
// the agent: one Unix-socket connection, a hand-written HTTP/1.1 request,
// encoding/json for the answer, no net/http, no cobra, none of the agent's
// packages (and so none of their package inits). It skips every check
// kc-agent makes (socket directory owner, peer uid) and knows only
// $KC_AGENT_SOCK. bench/tokenbench times it beside `kc-agent token` and a
// hello world, to show what the Go runtime costs and what the binary's
// size and inits cost.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tokenfloor: error:", err)
		os.Exit(1)
	}
}

func run() error {
	c, err := net.Dial("unix", os.Getenv("KC_AGENT_SOCK"))
	if err != nil {
		return err
	}
	defer c.Close()
	body := `{"profile":"default"}`
	fmt.Fprintf(c, "POST /v1/token HTTP/1.1\r\nHost: kc-agent.sock\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	r := textproto.NewReader(bufio.NewReader(c))
	status, err := r.ReadLine()
	if err != nil {
		return err
	}
	if !bytes.HasPrefix([]byte(status), []byte("HTTP/1.1 200")) {
		return fmt.Errorf("agent answered %q", status)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return err
	}
	var data []byte
	if n, err := strconv.Atoi(h.Get("Content-Length")); err == nil {
		data = make([]byte, n)
		_, err = io.ReadFull(r.R, data)
		if err != nil {
			return err
		}
	} else if data, err = io.ReadAll(r.R); err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &tok); err != nil {
		return err
	}
	fmt.Println(tok.AccessToken)
	return nil
}
