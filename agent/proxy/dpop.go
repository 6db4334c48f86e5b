package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// DPoP-bound tokens (RFC 9449). A route whose profile's token is bound
// sends it as "Authorization: DPoP <token>" with a fresh proof, signed in
// the agent, for the very request that goes upstream (its method and URL,
// and ath of the token). When the API answers a use_dpop_nonce challenge
// the request is sent once more with its nonce, if the body can be sent
// again; the last nonce of each upstream origin is used from then on.

// maxReplayBody bounds the request bodies kept in memory to be sent again
// after a nonce challenge; a larger one passes the challenge to the client.
const maxReplayBody = 1 << 20

// maxNonces bounds the remembered nonces (profile and origin pairs).
const maxNonces = 1024

// Prover signs DPoP proofs with a profile's login key (tokens.Manager).
type Prover interface {
	SignProof(ctx context.Context, profile string, p dpop.Proof) (string, error)
}

// proofError is a proof the agent could not sign: nothing was sent.
type proofError struct{ err error }

func (e *proofError) Error() string { return e.err.Error() }
func (e *proofError) Unwrap() error { return e.err }

// nonceBook keeps the last DPoP-Nonce each upstream origin sent, per
// profile (a server may keep nonces per client key).
type nonceBook struct {
	mu sync.Mutex
	m  map[string]string
}

func (b *nonceBook) get(key string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[key]
}

func (b *nonceBook) remember(key string, resp *http.Response) {
	n := resp.Header.Get("DPoP-Nonce")
	if !ipc.ValidNonce(n) {
		return // absent, or not a nonce a proof can carry
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil || len(b.m) >= maxNonces {
		b.m = map[string]string{}
	}
	b.m[key] = n
}

// proofTransport signs the requests of routes with bound tokens; others
// go to base untouched.
type proofTransport struct {
	p    *Proxy
	base http.RoundTripper
}

func (pt *proofTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ob, _ := r.Context().Value(ctxKey{}).(*outbound)
	if ob == nil || !ob.dpop {
		return pt.base.RoundTrip(r)
	}
	body, replay, err := replayableBody(r)
	if err != nil {
		return nil, err
	}
	key := ob.profile + " " + originKey(r.URL.Scheme, r.URL.Host)
	resp, err := pt.send(r, ob, body, pt.p.nonces.get(key))
	if err != nil {
		return nil, err
	}
	pt.p.nonces.remember(key, resp)
	nonce := resp.Header.Get("DPoP-Nonce")
	if !asksForNonce(resp) || !ipc.ValidNonce(nonce) || !replay {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keeps the connection
	resp.Body.Close()
	resp, err = pt.send(r, ob, body, nonce)
	if err == nil {
		pt.p.nonces.remember(key, resp)
	}
	return resp, err
}

// send sends a copy of r with a proof for it (and body, when kept).
func (pt *proofTransport) send(r *http.Request, ob *outbound, body []byte, nonce string) (*http.Response, error) {
	prover, ok := pt.p.tokens.(Prover)
	if !ok {
		return nil, &proofError{errors.New("this agent can not sign DPoP proofs")}
	}
	proof, err := prover.SignProof(r.Context(), ob.profile, dpop.Proof{Method: r.Method, URL: r.URL.String(), Nonce: nonce, AccessToken: ob.token})
	if err != nil {
		return nil, &proofError{err}
	}
	r2 := r.Clone(r.Context())
	if body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
	}
	r2.Header.Set("DPoP", proof)
	return pt.base.RoundTrip(r2)
}

// replayableBody reads a small body into memory, so the request can be
// sent again (replay). A larger one (or one of unknown length that turns
// out larger) is left streaming, with what was read put back in front.
func replayableBody(r *http.Request) (body []byte, replay bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	if r.ContentLength > maxReplayBody {
		return nil, false, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxReplayBody+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxReplayBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
		return nil, false, nil
	}
	r.Body.Close()
	return data, true, nil
}

// asksForNonce: a resource server's use_dpop_nonce challenge.
func asksForNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(v, "use_dpop_nonce") {
			return true
		}
	}
	return false
}

// proofFailed answers a request whose proof could not be signed, with the
// token manager's code and hint (login_required when the key is gone).
func proofFailed(w http.ResponseWriter, err error) bool {
	var pe *proofError
	if !errors.As(err, &pe) {
		return false
	}
	code, hint := ipc.CodeUnavailable, ""
	var te *tokens.Error
	if errors.As(err, &te) {
		code, hint = string(te.Code), te.Hint
	}
	writeError(w, code, "kc-agent could not sign a DPoP proof for this route: "+pe.Error(), hint)
	return true
}
