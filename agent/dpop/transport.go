package dpop

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxErrorBody bounds what is read of an answer to see whether it asks for a
// nonce.
const maxErrorBody = 64 << 10

// Transport adds a DPoP proof to every request it carries (the provider's
// token, device, logout and revocation endpoints: the client it wraps is
// used for nothing else that needs a proof, and a proof on discovery is
// harmless). When the server answers use_dpop_nonce, the request is sent
// once more with the nonce; the last nonce of each origin is kept for the
// next request.
type Transport struct {
	Base http.RoundTripper
	Key  crypto.Signer
	// Now is the clock proofs are dated by (iat); nil is time.Now.
	Now func() time.Time

	mu     sync.Mutex
	nonces map[string]string // origin -> last nonce it sent
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) nonce(origin string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[origin]
}

func (t *Transport) remember(origin string, resp *http.Response) {
	n := resp.Header.Get("DPoP-Nonce")
	if n == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nonces == nil {
		t.nonces = map[string]string{}
	}
	t.nonces[origin] = n
}

// RoundTrip signs r, sends it, and retries once with the server's nonce
// when it asks for one.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	origin := r.URL.Scheme + "://" + r.URL.Host
	resp, err := t.send(r, t.nonce(origin))
	if err != nil {
		return nil, err
	}
	t.remember(origin, resp)
	if !asksForNonce(resp) || resp.Header.Get("DPoP-Nonce") == "" {
		return resp, nil
	}
	if r.Body != nil && r.GetBody == nil {
		return resp, nil // can't send the body again; the caller sees the challenge
	}
	resp.Body.Close()
	return t.send(r, resp.Header.Get("DPoP-Nonce"))
}

func (t *Transport) send(r *http.Request, nonce string) (*http.Response, error) {
	proof, err := Proof{Method: r.Method, URL: r.URL.String(), Nonce: nonce, Now: t.now()}.Sign(t.Key)
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	if r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		r2.Body = body
	}
	r2.Header.Set("DPoP", proof)
	return t.base().RoundTrip(r2)
}

// asksForNonce reads whether resp is a use_dpop_nonce challenge: a token
// endpoint's 400 with that error in its JSON body, or a resource server's
// 401 with it in WWW-Authenticate. A 400's body is read and put back.
func asksForNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce")
	case http.StatusBadRequest:
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		if err != nil {
			return false
		}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(data, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

// ErrNoKey is returned where a bound login's key is missing: the login
// can't be refreshed and must be made again.
var ErrNoKey = errors.New("the key this login is bound to is missing")
