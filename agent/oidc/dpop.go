package oidc

import (
	"crypto"
	"errors"
	"net/http"
	"strings"

	"github.com/kc-agent/kc-agent/agent/dpop"
)

// WithDPoP returns a copy of c whose every request to the provider carries
// a DPoP proof signed by key: the code exchange, device polling, refresh,
// logout and revocation. Keycloak then binds the offline token to the key,
// and refuses to refresh it without a proof by the same key. Discovery
// stays shared (cached per issuer and client, never per key).
func (c *Client) WithDPoP(key crypto.Signer) *Client {
	cc := *c
	hc := *c.HTTP
	hc.Transport = &dpop.Transport{Base: c.HTTP.Transport, Key: key}
	cc.HTTP = &hc
	cc.key = key
	return &cc
}

// DPoPKey is the key WithDPoP gave c, or nil.
func (c *Client) DPoPKey() crypto.Signer { return c.key }

// ErrLogoutNeedsProof marks a logout Keycloak refused because it did not
// read the proof that came with it: Keycloak 26.7's logout endpoint never
// looks at the DPoP header (keycloak/keycloak#50306) and answers "DPoP
// proof is missing" for every bound refresh token. The session then stays
// at Keycloak until it idles out; without the key, no copy of the token
// can refresh it.
var ErrLogoutNeedsProof = errors.New("the identity provider can not end a DPoP-bound session (its logout endpoint ignores the proof: keycloak/keycloak#50306)")

// dpopMissing is Keycloak's error_description for a request without a
// proof where one is required: the realm's client policy demands DPoP, or
// the token was bound by a login with dpop: on.
const dpopMissing = "DPoP proof is missing"

// dpopError classifies the token endpoint's DPoP refusals; ok is false for
// every other error. A missing proof is a configuration matter, never "sign
// in again": signing in again without proofs fails the same way.
func dpopError(e *Error) bool {
	switch {
	case strings.Contains(e.Description, dpopMissing):
		e.Kind = KindConfig
		e.Msg = "the identity provider requires a DPoP proof (RFC 9449) for this login, and this profile sends none"
		e.Hint = "set `dpop: on` for this profile in your kc-agent config, then run `kc-agent login`"
	case e.Code == "invalid_grant" && strings.Contains(e.Description, "DPoP confirmation"):
		e.Kind = KindLoginRequired
		e.Msg = "the stored login is bound to another DPoP key than the one kc-agent holds for it"
		e.Hint = "run `kc-agent login` to sign in again with a new key"
	case e.Code == "invalid_dpop_proof":
		e.Kind = KindConfig
		e.Msg = "the identity provider refused kc-agent's DPoP proof"
		e.Hint = "check that this machine's clock is right (proofs are dated); if it is, report this with `kc-agent doctor` output"
	default:
		return false
	}
	return true
}

// logoutError is the logout endpoint's refusal: for a client with a key,
// Keycloak's "DPoP proof is missing" is its own bug, not the realm's
// policy (the proof was sent).
func (c *Client) logoutError(status int, code, desc string) error {
	err := classifyTokenError(status, code, desc)
	var e *Error
	if c.key != nil && status == http.StatusBadRequest && errors.As(err, &e) && strings.Contains(e.Description, dpopMissing) {
		e.Kind = KindOther
		e.Msg = "the identity provider did not end the session"
		e.Hint = ""
		e.Err = ErrLogoutNeedsProof
		e.Code, e.Description = "", ""
	}
	return err
}
