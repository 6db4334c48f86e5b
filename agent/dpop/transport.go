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
// next request. Proofs are dated by the server's clock once its answers
// have told it (clock.go); when the server refuses a proof and its answer
// shows the proof was dated by a clock off from its own, the request is
// sent once more, dated by the server's clock.
type Transport struct {
	Base http.RoundTripper
	Key  crypto.Signer
	// Now is the local clock; nil is time.Now.
	Now func() time.Time
	// Clocks keeps the servers' clocks; nil is ProviderClocks.
	Clocks *Clocks

	mu     sync.Mutex
	nonces map[string]string // origin -> last nonce it sent
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) clocks() *Clocks {
	if t.Clocks != nil {
		return t.Clocks
	}
	return ProviderClocks
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

// RoundTrip signs r, sends it, and sends it once more when the server
// asks for a nonce or refused a proof dated by a clock off from its own.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	origin := strings.ToLower(r.URL.Scheme + "://" + r.URL.Host)
	clocks := t.clocks()
	offset := clocks.Offset(origin)
	resp, err := t.send(r, t.nonce(origin), offset)
	if err != nil {
		return nil, err
	}
	t.remember(origin, resp)
	measured := clocks.observe(origin, resp, t.now())
	code := proofError(resp)
	nonce := resp.Header.Get("DPoP-Nonce")
	retry := (code == "use_dpop_nonce" && nonce != "") || (code == "invalid_dpop_proof" && measured != offset)
	if !retry || (r.Body != nil && r.GetBody == nil) {
		return resp, nil // nothing to retry, or can't send the body again: the caller sees the refusal
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // keeps the connection
	resp.Body.Close()
	if code != "use_dpop_nonce" {
		nonce = t.nonce(origin)
	}
	resp, err = t.send(r, nonce, measured)
	if err == nil {
		t.remember(origin, resp)
		clocks.observe(origin, resp, t.now())
	}
	return resp, err
}

func (t *Transport) send(r *http.Request, nonce string, offset time.Duration) (*http.Response, error) {
	// A request that carries a DPoP access token gets its hash (ath) in
	// the proof (RFC 9449 4.2).
	at, bound := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	if !bound {
		at = ""
	}
	proof, err := Proof{Method: r.Method, URL: r.URL.String(), Nonce: nonce, AccessToken: at, Now: t.now().Add(offset)}.Sign(t.Key)
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

// proofError reads which of its DPoP errors resp is: "use_dpop_nonce"
// (a challenge), "invalid_dpop_proof" (the proof was refused), or "".
// A token endpoint says so with a 400 and the error in its JSON body
// (Keycloak: invalid_dpop_proof, or invalid_request with a description
// that names the DPoP proof); a resource server with a 401 and the error
// in WWW-Authenticate. A 400's body is read and put back.
func proofError(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		h := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
		for _, code := range []string{"use_dpop_nonce", "invalid_dpop_proof"} {
			if strings.Contains(h, code) {
				return code
			}
		}
	case http.StatusBadRequest:
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err != nil || json.Unmarshal(data, &e) != nil {
			return ""
		}
		switch {
		case e.Error == "use_dpop_nonce", e.Error == "invalid_dpop_proof":
			return e.Error
		case e.Error == "invalid_request" && strings.Contains(e.Description, "DPoP proof"):
			return "invalid_dpop_proof"
		}
	}
	return ""
}

// ErrNoKey is returned where a bound login's key is missing: the login
// can't be refreshed and must be made again.
var ErrNoKey = errors.New("the key this login is bound to is missing")
