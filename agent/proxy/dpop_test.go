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
// nonce used from then on; a body up to the bound (known length or
// chunked) is sent again after a challenge, a larger one passes the
// challenge to the client.
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

	api.mu.Lock()
	api.nonce = "n-2" // the API rotates its nonce
	api.mu.Unlock()
	small := bytes.Repeat([]byte("x"), 1000)
	if code, body := f.send(t, "POST", "/api/items", bytes.NewReader(small), int64(len(small))); code != 200 || body != "got 1000 bytes" {
		t.Fatalf("POST after a rotation: HTTP %d %s", code, body)
	}
	if got := api.seen(); strings.Join(got, ",") != "challenge,ok" || !bytes.Equal(api.body[len(api.body)-1], small) {
		t.Fatalf("POST: the API saw %q", got)
	}

	api.mu.Lock()
	api.nonce = "n-3"
	api.mu.Unlock()
	chunked := io.MultiReader(bytes.NewReader(small), strings.NewReader("y")) // length unknown
	if code, body := f.send(t, "PUT", "/api/items", chunked, -1); code != 200 || body != "got 1001 bytes" {
		t.Fatalf("chunked PUT after a rotation: HTTP %d %s", code, body)
	}
	api.seen()

	api.mu.Lock()
	api.nonce = "n-4"
	api.mu.Unlock()
	big := bytes.Repeat([]byte("z"), maxReplayBody+10)
	code, body := f.send(t, "POST", "/api/items", bytes.NewReader(big), -1)
	if code != 401 || !strings.Contains(body, "use_dpop_nonce") {
		t.Fatalf("a body over the bound: HTTP %d %s, want the challenge passed on", code, body)
	}
	if got := api.seen(); len(got) != 1 || len(api.body[len(api.body)-1]) != len(big) {
		t.Fatalf("a body over the bound: the API saw %q with %d bytes", got, len(api.body[len(api.body)-1]))
	}
	if code, _ := f.send(t, "POST", "/api/items", bytes.NewReader(big), int64(len(big))); code != 200 {
		t.Fatalf("a large body with the nonce learnt from the passed-on challenge: HTTP %d", code)
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
