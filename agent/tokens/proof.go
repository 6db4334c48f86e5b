package tokens

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
)

// Bound says whether the token is DPoP-bound: it goes to an API as
// "Authorization: DPoP <token>" with a proof, never as Bearer.
func (a Access) Bound() bool { return strings.EqualFold(a.Type, "DPoP") }

// ProofRequest asks for an access token with a DPoP proof for one
// request to an API: its method, its URL and the API's nonce, if any.
type ProofRequest struct {
	Request
	Method, URL, Nonce string
}

// Proved is an access token and, when it is bound (Access.Bound), the
// proof that goes with it; a Bearer token comes without one.
type Proved struct {
	Access
	Proof string
}

// String never shows the token or the proof.
func (p Proved) String() string { return p.Access.String() }

// Proof returns the profile's access token (as Token does) and, for a
// bound token, a fresh proof for the request signed with the login's key
// (htm, htu, iat, a new jti, the nonce, and ath of this token). The key
// never leaves the agent.
func (m *Manager) Proof(ctx context.Context, req ProofRequest) (Proved, error) {
	req.ID = false // an ID token is not for APIs
	a, err := m.Token(ctx, req.Request)
	if err != nil || !a.Bound() {
		return Proved{Access: a}, err
	}
	proof, err := m.SignProof(ctx, req.Profile, dpop.Proof{Method: req.Method, URL: req.URL, Nonce: req.Nonce, AccessToken: a.Token})
	if err != nil {
		return Proved{}, err
	}
	return Proved{Access: a, Proof: proof}, nil
}

// SignProof signs p (dated now, by the local clock: an API has its own)
// with the key the profile's login is bound to. It refuses a proof for
// the provider's own grant endpoints (prooftarget.go). The key is read
// from its store once and kept in memory until the login is replaced,
// logged out or reloaded.
func (m *Manager) SignProof(ctx context.Context, profile string, p dpop.Proof) (string, error) {
	pr, err := m.profile(profile)
	if err != nil {
		return "", err
	}
	htu, err := dpop.TargetURI(p.URL)
	if err != nil {
		return "", &Error{Code: CodeBadRequest, Msg: fmt.Sprintf("can not sign a DPoP proof for profile %q: %v", profile, strings.TrimPrefix(err.Error(), "dpop: "))}
	}
	if err := m.checkProofTarget(ctx, profile, pr.cfg, htu); err != nil {
		return "", err
	}
	key, err := pr.signer(ctx)
	if err != nil {
		return "", err
	}
	p.Now = m.now()
	proof, err := p.Sign(key)
	if err != nil {
		return "", &Error{Code: CodeUnavailable, Msg: fmt.Sprintf("could not sign a DPoP proof for profile %q: %v", profile, err)}
	}
	return proof, nil
}

// keyCache is a profile's login key, loaded once: reading a keychain item
// per request would cost more than the request. An entry is for one
// generation of the profile (forgetLocked drops it, and a newer
// generation never takes an older one's entry).
type keyCache struct {
	load  sync.Mutex // one load at a time
	entry atomic.Pointer[cachedKey]
}

type cachedKey struct {
	gen int
	jkt string
	key crypto.Signer
}

func (c *keyCache) drop() { c.entry.Store(nil) }

// signer is the key the profile's login is bound to.
func (p *profile) signer(ctx context.Context) (crypto.Signer, error) {
	p.mu.Lock()
	gen, rec, cfg := p.gen, p.rec, p.cfg
	p.mu.Unlock()
	fresh := func() (crypto.Signer, bool) {
		e := p.key.entry.Load()
		if e == nil || e.gen != gen || e.jkt != rec.KeyThumbprint {
			return nil, false
		}
		return e.key, true
	}
	if rec.KeyThumbprint == "" {
		return nil, &Error{Code: CodeLoginRequired, Msg: fmt.Sprintf("profile %q has a DPoP-bound access token but its login names no key", p.name),
			Hint: loginHint(p.name)}
	}
	if key, ok := fresh(); ok {
		return key, nil
	}
	p.key.load.Lock()
	defer p.key.load.Unlock()
	if key, ok := fresh(); ok { // another caller loaded it meanwhile
		return key, nil
	}
	key, err := loginKey(ctx, p.name, cfg, rec)
	if err != nil {
		return nil, keyError(p.name, err)
	}
	p.key.entry.Store(&cachedKey{gen: gen, jkt: rec.KeyThumbprint, key: key})
	return key, nil
}

// keyError puts loginKey's provider-side error kinds in the manager's
// codes.
func keyError(name string, err error) error {
	switch oidc.KindOf(err) {
	case oidc.KindLoginRequired:
		return &Error{Code: CodeLoginRequired, Msg: err.Error(), Hint: loginHint(name)}
	case oidc.KindConfig:
		return &Error{Code: CodeConfig, Msg: err.Error(), Hint: oidc.HintOf(err)}
	}
	return &Error{Code: CodeUnavailable, Msg: err.Error(), Hint: "kc-agent reads the key again on the next request"}
}
