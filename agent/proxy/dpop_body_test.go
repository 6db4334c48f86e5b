package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
)

// upstreamRT hands each request it gets to the test and answers 200.
type upstreamRT chan *http.Request

func (c upstreamRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c <- r
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func outboundRequest(ob *outbound, body io.Reader, length int64) *http.Request {
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), ctxKey{}, ob), "POST", "http://127.0.0.1:1/stream", body)
	req.ContentLength = length
	return req
}

// A body of unknown length goes upstream at once through a DPoP route as
// through a Bearer one, still streaming: a client that sends a line and
// waits for the answer before it sends the next is not held back.
func TestDPoPRouteDoesNotHoldBackStreamedBodies(t *testing.T) {
	key, _ := dpop.NewKey()
	p := &Proxy{tokens: &boundTokens{key: key}}
	for _, bound := range []bool{false, true} {
		sent := make(upstreamRT, 1)
		pt := &proofTransport{p: p, base: sent}
		body, w := io.Pipe()
		defer w.Close()
		go pt.RoundTrip(outboundRequest(&outbound{token: "tok", dpop: bound, profile: "default"}, body, -1))
		var up *http.Request
		select {
		case up = <-sent:
		case <-time.After(2 * time.Second):
			t.Fatalf("dpop=%v: the request with a streamed body was not sent upstream before its body ended", bound)
		}
		if bound && up.Header.Get("DPoP") == "" {
			t.Fatal("the streamed request went upstream without a proof")
		}
		lines := bufio.NewReader(up.Body)
		for _, line := range []string{"one\n", "two\n"} {
			go io.WriteString(w, line)
			if got, err := lines.ReadString('\n'); got != line {
				t.Fatalf("dpop=%v: upstream read %q (%v), want the client's line %q as it was sent", bound, got, err, line)
			}
		}
	}
}

// heldRT hands each request it gets to the test and answers 200 once
// release is closed.
type heldRT struct {
	sent    chan *http.Request
	release chan struct{}
}

func (h heldRT) RoundTrip(r *http.Request) (*http.Response, error) {
	h.sent <- r
	<-h.release
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

// clientBody is a request body as the client sends it.
type clientBody struct{ *bytes.Reader }

func (clientBody) Close() error { return nil }

// The bytes kept for replays are bounded across requests in flight: a
// body that does not fit goes on streaming, not kept; all is given back
// when the round trips end.
func TestDPoPReplayBudget(t *testing.T) {
	key, _ := dpop.NewKey()
	p := &Proxy{tokens: &boundTokens{key: key}}
	fit := maxReplayHeld / maxReplayBody
	up := heldRT{make(chan *http.Request, fit+2), make(chan struct{})}
	pt := &proofTransport{p: p, base: up}
	var wg sync.WaitGroup
	for range fit + 2 {
		wg.Go(func() {
			body := clientBody{bytes.NewReader(make([]byte, maxReplayBody))}
			pt.RoundTrip(outboundRequest(&outbound{token: "tok", dpop: true, profile: "default"}, body, maxReplayBody))
		})
	}
	kept := 0
	for range fit + 2 {
		if _, streamed := (<-up.sent).Body.(clientBody); !streamed {
			kept++
		}
	}
	if held := p.replay.held.Load(); kept != fit || held != maxReplayHeld {
		t.Fatalf("%d of %d bodies kept for a replay (%d bytes counted), want %d (%d bytes)", kept, fit+2, held, fit, maxReplayHeld)
	}
	close(up.release)
	wg.Wait()
	if held := p.replay.held.Load(); held != 0 {
		t.Fatalf("%d bytes still counted as kept after the round trips", held)
	}
}

// A Bearer route's request (and a request without a route's token) goes
// to the upstream transport as it is: not copied, its body not read.
func TestBearerRouteRequestUntouched(t *testing.T) {
	p := &Proxy{tokens: &boundTokens{}}
	for _, ob := range []*outbound{{token: "tok", profile: "default"}, nil} {
		sent := make(upstreamRT, 1)
		pt := &proofTransport{p: p, base: sent}
		body := strings.NewReader("payload")
		req := outboundRequest(ob, body, 7)
		if ob == nil {
			req = req.WithContext(context.Background())
		}
		pt.RoundTrip(req)
		if up := <-sent; up != req || up.Header.Get("DPoP") != "" || body.Len() != 7 {
			t.Fatalf("outbound %+v: the request was changed on its way (same request %v, DPoP %q, %d body bytes left)",
				ob, up == req, up.Header.Get("DPoP"), body.Len())
		}
	}
}

// scriptAPI answers the n-th request (from 1) as reply says and records
// the nonce of each request's proof and the size of its body.
type scriptAPI struct {
	*httptest.Server
	mu     sync.Mutex
	nonces []string
	sizes  []int
}

func newScriptAPI(t *testing.T, reply func(w http.ResponseWriter, n int)) *scriptAPI {
	a := &scriptAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, _ := dpopapi.ParseProof(r.Header.Get("DPoP"))
		a.mu.Lock()
		a.nonces = append(a.nonces, p.Nonce)
		a.sizes = append(a.sizes, len(body))
		n := len(a.nonces)
		a.mu.Unlock()
		reply(w, n)
	}))
	t.Cleanup(a.Close)
	return a
}

func challenge(w http.ResponseWriter, status int, nonce, auth string) {
	w.Header().Set("DPoP-Nonce", nonce)
	w.Header().Set("WWW-Authenticate", auth)
	w.WriteHeader(status)
}

// A request is sent again only after a 401 use_dpop_nonce challenge
// with a nonce, only once, and with its whole body.
func TestDPoPRouteRetryRules(t *testing.T) {
	useNonce := `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`
	for _, tc := range []struct {
		name  string
		reply func(w http.ResponseWriter, n int)
		code  int
		tries string // the proofs' nonces, one per request upstream
	}{
		{"challenge, then served", func(w http.ResponseWriter, n int) {
			if n == 1 {
				challenge(w, 401, "n-1", useNonce)
			}
		}, 200, `"",n-1`},
		{"a challenge each time", func(w http.ResponseWriter, n int) {
			challenge(w, 401, fmt.Sprintf("n-%d", n), useNonce)
		}, 401, `"",n-1`},
		{"401 invalid_token with a nonce", func(w http.ResponseWriter, n int) {
			challenge(w, 401, "n-1", `DPoP error="invalid_token"`)
		}, 401, `""`},
		{"400 naming use_dpop_nonce", func(w http.ResponseWriter, n int) {
			challenge(w, 400, "n-1", useNonce)
		}, 400, `""`},
		{"401 use_dpop_nonce without a nonce", func(w http.ResponseWriter, n int) {
			challenge(w, 401, "", useNonce)
		}, 401, `""`},
		{"served, with a nonce for later", func(w http.ResponseWriter, n int) {
			w.Header().Set("DPoP-Nonce", "n-1")
		}, 200, `""`},
	} {
		for _, size := range []int{0, 1000} {
			api := newScriptAPI(t, tc.reply)
			key, _ := dpop.NewKey()
			f := startProxyTokens(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s\n", api.URL), peer.Visible, &boundTokens{key: key})
			method := map[int]string{0: "GET", 1000: "POST"}[size]
			code, _ := f.send(t, method, "/api/x", bytes.NewReader(make([]byte, size)), int64(size))
			var tries []string
			for i, n := range api.nonces {
				tries = append(tries, map[bool]string{true: `""`, false: n}[n == ""])
				if api.sizes[i] != size {
					t.Errorf("%s, %s: request %d upstream had %d body bytes, want %d", tc.name, method, i+1, api.sizes[i], size)
				}
			}
			if got := strings.Join(tries, ","); code != tc.code || got != tc.tries {
				t.Errorf("%s, %s: HTTP %d after requests upstream with nonces %s, want HTTP %d after %s", tc.name, method, code, got, tc.code, tc.tries)
			}
		}
	}
}

// Through a route, with and without DPoP, the upstream reads a streamed
// body as the client sends it: a client that waits for the upstream to
// take its first line before it sends the rest gets its answer.
func TestDPoPRouteStreamsUploads(t *testing.T) {
	took := make(chan string)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lines := bufio.NewScanner(r.Body)
		for lines.Scan() {
			took <- lines.Text()
		}
		io.WriteString(w, "done")
	}))
	defer up.Close()
	key, _ := dpop.NewKey()
	for _, src := range []TokenSource{fakeTokens{}, &boundTokens{key: key}} {
		f := startProxyTokens(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s\n", up.URL), peer.Visible, src)
		body, w := io.Pipe()
		answer := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest("POST", "http://"+f.main+"/api/upload", body)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				answer <- err.Error()
				return
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answer <- string(data)
		}()
		for _, line := range []string{"one", "two"} {
			go io.WriteString(w, line+"\n")
			select {
			case got := <-took:
				if got != line {
					t.Fatalf("%T: the upstream took %q, want %q", src, got, line)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%T: the upstream did not get the line %q the client sent", src, line)
			}
		}
		w.Close()
		select {
		case got := <-answer:
			if got != "done" {
				t.Fatalf("%T: the client got %q, want the upstream's answer", src, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%T: no answer after the body ended", src)
		}
	}
}
