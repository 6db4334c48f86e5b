package proxy

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
)

// boundTokens hands out a DPoP-bound token and signs proofs with key
// (nil key: the login's key is gone).
type boundTokens struct{ key crypto.Signer }

func (b *boundTokens) Token(_ context.Context, req tokens.Request) (tokens.Access, error) {
	return tokens.Access{Token: "bound-" + req.Profile, Type: "DPoP"}, nil
}

func (b *boundTokens) SignProof(_ context.Context, profile string, p dpop.Proof) (string, error) {
	if b.key == nil {
		return "", &tokens.Error{Code: tokens.CodeLoginRequired, Msg: "the key is missing", Hint: "run `kc-agent login`"}
	}
	return p.Sign(b.key)
}

// nonceAPI checks each request's proof (signature, htm, htu, ath) and
// challenges any proof without its current nonce; it records each
// attempt's verdict and body.
type nonceAPI struct {
	*httptest.Server
	key   crypto.Signer
	nonce string
	mu    sync.Mutex
	tries []string // "challenge", "ok" or why refused
	body  [][]byte
}

func newNonceAPI(t *testing.T, key crypto.Signer) *nonceAPI {
	a := &nonceAPI{key: key, nonce: "n-1"}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *nonceAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	verdict := a.check(r)
	a.mu.Lock()
	a.tries = append(a.tries, verdict)
	a.body = append(a.body, body)
	nonce := a.nonce
	a.mu.Unlock()
	switch verdict {
	case "ok":
		fmt.Fprintf(w, "got %d bytes", len(body))
	case "challenge":
		w.Header().Set("DPoP-Nonce", nonce)
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.WriteHeader(401)
	default:
		w.WriteHeader(400)
	}
}

func (a *nonceAPI) check(r *http.Request) string {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	if !ok {
		return "no DPoP authorization"
	}
	p, err := dpopapi.ParseProof(r.Header.Get("DPoP"))
	jkt, _ := dpop.Thumbprint(a.key)
	switch {
	case err != nil:
		return err.Error()
	case p.Thumbprint != jkt || p.ATH != dpopapi.ATH(at) || p.HTM != r.Method || p.HTU != "http://"+r.Host+r.URL.Path:
		return fmt.Sprintf("wrong claims %+v", p)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.Nonce != a.nonce {
		return "challenge"
	}
	return "ok"
}

// rotate makes the API want nonce n from now on.
func (a *nonceAPI) rotate(n string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nonce = n
}

func (a *nonceAPI) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.tries
	a.tries = nil
	return out
}

func (f *fixture) send(t *testing.T, method, path string, body io.Reader, length int64) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+f.main+path, body)
	req.ContentLength = length
	resp, err := http.DefaultTransport.(*http.Transport).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data) + resp.Header.Get("WWW-Authenticate")
}

// A route with a bound token sends it as DPoP with a proof for the
// upstream request; the API's nonce challenge is answered once and the
// nonce used from then on; a body of known length up to the bound is sent
// again after a challenge, a larger one or a chunked one passes the
// challenge to the client, whose retry then succeeds.
func TestDPoPRouteProofsAndNonce(t *testing.T) {
	key, _ := dpop.NewKey()
	api := newNonceAPI(t, key)
	f := startProxyTokens(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/v1\n", api.URL), peer.Visible, &boundTokens{key: key})

	if code, body := f.send(t, "GET", "/api/items?q=1", nil, 0); code != 200 {
		t.Fatalf("first GET: HTTP %d %s", code, body)
	}
	if got := api.seen(); strings.Join(got, ",") != "challenge,ok" {
		t.Fatalf("first GET: the API saw %q, want a challenge and the retry", got)
	}
	if code, _ := f.send(t, "GET", "/api/items", nil, 0); code != 200 || len(api.seen()) != 1 {
		t.Fatal("the next request did not use the remembered nonce")
	}

	api.rotate("n-2")
	small := bytes.Repeat([]byte("x"), 1000)
	if code, body := f.send(t, "POST", "/api/items", bytes.NewReader(small), int64(len(small))); code != 200 || body != "got 1000 bytes" {
		t.Fatalf("POST after a rotation: HTTP %d %s", code, body)
	}
	if got := api.seen(); strings.Join(got, ",") != "challenge,ok" || !bytes.Equal(api.body[len(api.body)-1], small) {
		t.Fatalf("POST: the API saw %q", got)
	}

	// A body of unknown length goes on at once and is not kept: the
	// challenge is passed on, and the client's retry carries the nonce the
	// proxy learnt from it.
	api.rotate("n-3")
	for i, want := range []string{"challenge", "ok"} {
		chunked := io.MultiReader(bytes.NewReader(small), strings.NewReader("y"))
		code, body := f.send(t, "PUT", "/api/items", chunked, -1)
		if got := api.seen(); strings.Join(got, ",") != want || len(api.body[len(api.body)-1]) != 1001 {
			t.Fatalf("chunked PUT %d after a rotation: the API saw %q with %d bytes, want %s", i, got, len(api.body[len(api.body)-1]), want)
		}
		if want == "challenge" && (code != 401 || !strings.Contains(body, "use_dpop_nonce")) {
			t.Fatalf("chunked PUT: HTTP %d %s, want the challenge passed on", code, body)
		}
		if want == "ok" && (code != 200 || body != "got 1001 bytes") {
			t.Fatalf("chunked PUT retried by the client: HTTP %d %s", code, body)
		}
	}

	// A known length up to the bound is kept and sent again; over it, the
	// challenge is passed on and the client's retry succeeds.
	for _, size := range []int{maxReplayBody, maxReplayBody + 1} {
		api.rotate(fmt.Sprintf("n-%d", size))
		big := bytes.Repeat([]byte("z"), size)
		code, body := f.send(t, "POST", "/api/items", bytes.NewReader(big), int64(size))
		got := strings.Join(api.seen(), ",")
		if size == maxReplayBody && (code != 200 || got != "challenge,ok" || !bytes.Equal(api.body[len(api.body)-1], big)) {
			t.Fatalf("a body of %d bytes: HTTP %d, the API saw %q", size, code, got)
		}
		if size > maxReplayBody && (code != 401 || !strings.Contains(body, "use_dpop_nonce") || got != "challenge") {
			t.Fatalf("a body of %d bytes: HTTP %d %s, the API saw %q, want the challenge passed on", size, code, body, got)
		}
	}
	if code, _ := f.send(t, "POST", "/api/items", bytes.NewReader(make([]byte, maxReplayBody+1)), maxReplayBody+1); code != 200 {
		t.Fatalf("a large body with the nonce learnt from the passed-on challenge: HTTP %d", code)
	}
	if n := f.p.replay.held.Load(); n != 0 {
		t.Fatalf("%d bytes still counted as kept for a replay after the requests", n)
	}
}

// A bound token whose key is gone is never sent: the client gets
// login_required with the way out.
func TestDPoPRouteWithoutKey(t *testing.T) {
	api := newNonceAPI(t, nil)
	f := startProxyTokens(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s\n", api.URL), peer.Visible, &boundTokens{})
	code, body := f.send(t, "GET", "/api/x", nil, 0)
	if code != 401 || !strings.Contains(body, "login_required") || !strings.Contains(body, "kc-agent login") {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if n := len(api.seen()); n != 0 {
		t.Fatalf("the API got %d requests without a proof", n)
	}
}

// The forward proxy's intercepted origins prove their requests too.
func TestDPoPForwardProxy(t *testing.T) {
	key, _ := dpop.NewKey()
	api := newNonceAPI(t, key)
	f := startProxyTokens(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/v1\n    intercept: true\n", api.URL), peer.Visible, &boundTokens{key: key})
	if resp := f.forwardGet(t, api.URL+"/v1/items"); resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	if got := api.seen(); strings.Join(got, ",") != "challenge,ok" {
		t.Fatalf("the API saw %q", got)
	}
}

// startProxyTokens is startProxyWhere with the tokens of src.
func startProxyTokens(t *testing.T, yaml string, ownersVisible bool, src TokenSource) *fixture {
	t.Helper()
	if !strings.Contains(yaml, "proxy:") {
		yaml = "proxy:\n  listen: 127.0.0.1:0\n" + yaml
	}
	cfg, err := config.ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n  other:\n    issuer: https://sso.example.com/realms/r\n"+yaml), ownersVisible)
	if err != nil {
		t.Fatal(err)
	}
	state := testenv.TempDir(t)
	p, err := New(Options{Config: cfg, Tokens: src, StateDir: state, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &fixture{p: p, main: p.Addr(), secret: p.secret}
}
