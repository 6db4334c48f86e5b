package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// DPoP-bound tokens (RFC 9449). A route whose profile's token is bound
// sends it as "Authorization: DPoP <token>" with a fresh proof, signed in
// the agent, for the very request that goes upstream (its method and URL,
// and ath of the token). When the API answers a use_dpop_nonce challenge
// the request is sent once more with its nonce, if the body can be sent
// again; the last nonce of each upstream origin is used from then on, so
// a client that gets a challenge passed on succeeds when it retries.

// maxReplayBody bounds a request body kept in memory to be sent again
// after a nonce challenge: only a body of known length (Content-Length)
// up to this is kept; a larger one, or one of unknown length (a chunked
// upload, a stream), goes on at once, and a challenge for it is passed
// on to the client.
const maxReplayBody = 128 << 10

// maxReplayHeld bounds the bytes kept for replays across all requests in
// flight; a body that does not fit goes on streaming, not replayable.
const maxReplayHeld = 4 << 20

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
	body, replay, release, err := pt.p.replay.replayableBody(r)
	if err != nil {
		return nil, err
	}
	defer release()
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

// replayBudget counts the bytes of request bodies kept for a replay, by
// all requests in flight.
type replayBudget struct{ held atomic.Int64 }

func (b *replayBudget) reserve(n int64) bool {
	for {
		h := b.held.Load()
		if h+n > maxReplayHeld {
			return false
		}
		if b.held.CompareAndSwap(h, h+n) {
			return true
		}
	}
}

// replayableBody reads a body of known length up to maxReplayBody into
// memory, when the budget has room for it, so that the request can be
// sent again (replay). Any other body is left streaming and goes upstream
// at once: a body of unknown length is never waited for, as its client
// may wait for an answer before it sends more. release gives back what
// the body took of the budget (call it when the round trip is over).
func (b *replayBudget) replayableBody(r *http.Request) (body []byte, replay bool, release func(), err error) {
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return nil, true, func() {}, nil
	case r.ContentLength <= 0 || r.ContentLength > maxReplayBody || !b.reserve(r.ContentLength):
		return nil, false, func() {}, nil
	}
	n := r.ContentLength
	release = func() { b.held.Add(-n) }
	data := make([]byte, n)
	if _, err := io.ReadFull(r.Body, data); err != nil {
		release()
		return nil, false, nil, fmt.Errorf("reading the request body from the client: %w", err)
	}
	r.Body.Close()
	return data, true, release, nil
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
