// Package launcher hands a sign-in link to a browser without putting it on
// any process's argv. Every local user can read every process's command
// line (/proc/*/cmdline, ps), and a sign-in link carries what makes the
// sign-in: the state, PKCE challenge and nonce of a browser sign-in, the
// user code of a device sign-in. A neighbour who reads it can complete the
// sign-in as their own identity-provider user, and this user's agent would
// then keep the neighbour's login.
//
// So the opener ($BROWSER, xdg-open, Python's webbrowser) gets a one-time
// loopback link instead, http://127.0.0.1:PORT/<random>, which answers
// 302 to the real link once, and only on a connection this user's process
// made (sameuser.ListenLoopback, the proxy's owner check). A neighbour who reads
// the launcher link from argv gets the connection closed; the link stays
// good for the user's browser.
package launcher

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kc-agent/kc-agent/internal/sameuser"
)

// Launcher serves one-time links on a loopback port of its own.
type Launcher struct {
	host    string // 127.0.0.1:PORT, the only Host it answers
	srv     *http.Server
	refused atomic.Int64

	mu    sync.Mutex
	links map[string]link
}

type link struct {
	target string
	until  time.Time
}

// Start listens on a free 127.0.0.1 port. Connections from other users are
// closed before a byte is read and logged to log (nil: not logged).
func Start(log *slog.Logger) (*Launcher, error) {
	l := &Launcher{links: map[string]link{}}
	ln, err := sameuser.ListenLoopback(log, "sign-in launcher refused a connection from another user", func() { l.refused.Add(1) })
	if err != nil {
		return nil, fmt.Errorf("listening for the sign-in launcher on 127.0.0.1: %w", err)
	}
	l.host = ln.Addr().String()
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serve), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	go l.srv.Serve(ln)
	return l, nil
}

// Link makes a one-time link that redirects to target until the given
// time. It is safe to show anywhere, argv included: only this user's
// processes can follow it, once.
func (l *Launcher) Link(target string, until time.Time) string {
	id := rand.Text()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.links {
		if !now.Before(v.until) {
			delete(l.links, k)
		}
	}
	l.links[id] = link{target: target, until: until}
	return "http://" + l.host + "/" + id
}

// Refused counts the connections refused as another user's.
func (l *Launcher) Refused() int64 { return l.refused.Load() }

// Close stops the listener; unused links die with it.
func (l *Launcher) Close() { l.srv.Close() }

// ErrNoBrowser is returned by Open when no opener is given.
var ErrNoBrowser = errors.New("no browser to open")

// Open opens target in the browser through a one-time link of l: the
// opener sees only the link.
func (l *Launcher) Open(open func(string) error, target string, until time.Time) error {
	if open == nil {
		return ErrNoBrowser
	}
	return open(l.Link(target, until))
}

const pageGone = `<!doctype html><meta charset="utf-8"><title>kc-agent</title>
<body style="font-family:sans-serif;margin:4em"><h1>This sign-in link was already used</h1>
<p>Each link kc-agent opens works once, and only until its sign-in ends. Go back to the terminal or notebook: it shows the sign-in page, or start the sign-in again.</p></body>`

func (l *Launcher) serve(w http.ResponseWriter, r *http.Request) {
	// A literal Host only: a web page can not reach this through a name
	// that resolves to 127.0.0.1 (DNS rebinding).
	if r.Host != l.host {
		http.Error(w, "unexpected Host", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/")
	l.mu.Lock()
	lk, ok := l.links[id]
	delete(l.links, id)
	l.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !ok || !time.Now().Before(lk.until) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, pageGone)
		return
	}
	http.Redirect(w, r, lk.target, http.StatusFound)
}
