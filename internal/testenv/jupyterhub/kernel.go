//go:build linux

package jupyterhub

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Kernel is a Python kernel in a user's server, driven the way JupyterLab
// drives it: started through the server's REST API and spoken to over its
// websocket (the JSON form of the Jupyter messaging protocol), both through
// the hub's proxy with the test service's token.
type Kernel struct {
	ID      string
	user    string
	session string
	conn    *websocket.Conn
	msgs    chan message
	readErr error // why msgs closed
}

// StartKernel starts a python3 kernel in the user's running server and
// connects to its channels.
func (h *Hub) StartKernel(ctx context.Context, name string) (*Kernel, error) {
	var k struct {
		ID string `json:"id"`
	}
	base := "/user/" + url.PathEscape(name) + "/api/kernels"
	if err := h.api(ctx, "POST", base, map[string]string{"name": "python3"}, &k); err != nil {
		return nil, err
	}
	session := randomHex(16)
	ws := strings.Replace(h.URL, "http://", "ws://", 1) + base + "/" + url.PathEscape(k.ID) + "/channels?session_id=" + session
	hdr := http.Header{}
	hdr.Set("Authorization", "token "+h.token)
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, fmt.Errorf("kernel websocket of %s: %w", name, err)
	}
	conn.SetReadLimit(16 << 20)
	kn := &Kernel{ID: k.ID, user: name, session: session, conn: conn, msgs: make(chan message, 4096)}
	// Read all the time, not only during Execute: the websocket library
	// answers the server's pings only while reading, and jupyter_server
	// closes a socket that misses them (30 s) while a test waits.
	go kn.read()
	// A new kernel may still be starting: wait until it answers.
	if _, err := kn.Execute(ctx, "pass", nil); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("the new kernel of %s does not run code: %w", name, err)
	}
	return kn, nil
}

func (k *Kernel) read() {
	defer close(k.msgs)
	for {
		var m message
		if err := wsjson.Read(context.Background(), k.conn, &m); err != nil {
			k.readErr = err
			return
		}
		k.msgs <- m
	}
}

// Close disconnects; the kernel ends with its server.
func (k *Kernel) Close() { k.conn.CloseNow() }

type message struct {
	Header       header         `json:"header"`
	ParentHeader header         `json:"parent_header"`
	Metadata     map[string]any `json:"metadata"`
	Content      map[string]any `json:"content"`
	Channel      string         `json:"channel"`
	Buffers      []any          `json:"buffers"`
}

type header struct {
	MsgID    string `json:"msg_id,omitempty"`
	MsgType  string `json:"msg_type,omitempty"`
	Username string `json:"username,omitempty"`
	Session  string `json:"session,omitempty"`
	Date     string `json:"date,omitempty"`
	Version  string `json:"version,omitempty"`
}

// ExecError is code that raised in the kernel.
type ExecError struct {
	Name, Value string
	Output      string // what the cell printed before
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("%s: %s (output: %q)", e.Name, e.Value, e.Output)
}

// Execute runs code in the kernel and returns what it printed (stdout and
// stderr). onHTML, when set, sees every HTML display the code shows or
// updates while it runs (how login() shows its sign-in link). Code that
// raises returns an *ExecError.
func (k *Kernel) Execute(ctx context.Context, code string, onHTML func(string)) (string, error) {
	id := randomHex(16)
	req := message{
		Header: header{MsgID: id, MsgType: "execute_request", Username: k.user, Session: k.session,
			Date: time.Now().UTC().Format(time.RFC3339Nano), Version: "5.3"},
		Metadata: map[string]any{}, Channel: "shell", Buffers: []any{},
		Content: map[string]any{"code": code, "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	if err := wsjson.Write(ctx, k.conn, req); err != nil {
		return "", fmt.Errorf("sending code to %s's kernel: %w", k.user, err)
	}
	var out strings.Builder
	var execErr error
	replied, idle := false, false
	for !replied || !idle {
		var m message
		select {
		case <-ctx.Done():
			return out.String(), fmt.Errorf("%s's kernel (output so far %q): %w", k.user, out.String(), ctx.Err())
		case msg, ok := <-k.msgs:
			if !ok {
				return out.String(), fmt.Errorf("reading %s's kernel (output so far %q): %w", k.user, out.String(), k.readErr)
			}
			m = msg
		}
		if m.ParentHeader.MsgID != id {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			out.WriteString(fmt.Sprint(m.Content["text"]))
		case "display_data", "update_display_data", "execute_result":
			if data, ok := m.Content["data"].(map[string]any); ok {
				if h, ok := data["text/html"].(string); ok && onHTML != nil {
					onHTML(h)
				}
				if s, ok := data["text/plain"].(string); ok && m.Header.MsgType == "execute_result" {
					out.WriteString(s + "\n")
				}
			}
		case "error":
			execErr = &ExecError{Name: fmt.Sprint(m.Content["ename"]), Value: fmt.Sprint(m.Content["evalue"])}
		case "execute_reply":
			replied = true
		case "status":
			idle = m.Content["execution_state"] == "idle"
		}
	}
	if e, ok := execErr.(*ExecError); ok {
		e.Output = out.String()
		return out.String(), e
	}
	return out.String(), nil
}
