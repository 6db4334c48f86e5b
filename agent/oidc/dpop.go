package oidc

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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

// dpopNotActive is Keycloak's error_description for a proof whose iat is
// outside the time it accepts.
const dpopNotActive = "DPoP proof is not active"

// dpopError classifies the token endpoint's DPoP refusals; ok is false for
// every other error. A missing proof is a configuration matter, never "sign
// in again": signing in again without proofs fails the same way.
func dpopError(e *Error) bool {
	switch {
	case strings.Contains(e.Description, dpopMissing):
		e.Kind = KindConfig
		e.Msg = "the identity provider requires a DPoP proof (RFC 9449) for this login, and this login has no key to prove it with"
		e.Hint = "the realm's client policy (executor dpop-bind-enforcer) demands proofs of this client: run `kc-agent login` to sign in with a key " +
			"(with `dpop: auto`, the default, or `dpop: refresh` for this profile; not `dpop: off`). " +
			"The access tokens stay Bearer only if the Keycloak admin turned on \"Bind only refresh token for public client\" (allow-only-refresh-token-binding); else use `dpop: on` if the APIs accept DPoP"
	case e.Code == "invalid_grant" && strings.Contains(e.Description, "DPoP confirmation"):
		e.Kind = KindLoginRequired
		e.Msg = "the stored login is bound to another DPoP key than the one kc-agent holds for it"
		e.Hint = "run `kc-agent login` to sign in again with a new key"
	case strings.Contains(e.Description, dpopNotActive):
		// A clock matter, not the login's: once the clock is right the
		// next retry works.
		e.Kind = KindTransient
		e.Msg = "the identity provider refused kc-agent's DPoP proof as dated outside the time it accepts: this machine's clock and the provider's differ by more than it allows (Keycloak: 15 s ahead, 25 s behind)"
		e.Hint = "set this machine's clock right (`timedatectl set-ntp true`; on Windows `w32tm /resync`). " +
			"kc-agent dates its proofs by the provider's clock once the provider's answers show it (a Date header, or a token it issued), and retries by itself"
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

// GrantEndpoints are the provider's endpoints where a proof of the
// login's key would let a copy of its tokens be used: those that take a
// refresh token, a code or a device grant, or end or inspect a session
// (token, revocation, end-session, device authorization, PAR,
// introspection, CIBA, and their mTLS aliases). The agent signs proofs
// for APIs, never for these.
func (c *Client) GrantEndpoints() []string {
	m := c.meta
	out := []string{m.TokenURL, m.RevokeURL, m.EndSession, m.DeviceURL, m.PARURL, m.IntrospectURL, m.CIBAURL}
	for name, u := range m.MTLSAliases {
		if name != "userinfo_endpoint" {
			out = append(out, u)
		}
	}
	return slices.DeleteFunc(out, func(u string) bool { return u == "" })
}

// AdvertisesDPoP says whether discovery names DPoP proof algorithms
// (dpop_signing_alg_values_supported): the provider understands proofs.
func (c *Client) AdvertisesDPoP() bool { return len(c.meta.DPoPAlgs) > 0 }

// ProbeDPoP asks the token endpoint whether it demands DPoP proofs of
// this client, at the cost of one refused request: a refresh grant with
// a token that is no token, sent without a proof. Keycloak runs its
// client policies before it reads the token: where the dpop-bind-enforcer
// applies to the client it answers "DPoP proof is missing", elsewhere
// "Invalid refresh token". Nothing is bound or stored.
func (c *Client) ProbeDPoP(ctx context.Context) (bool, error) {
	plain := *c
	if t, ok := c.HTTP.Transport.(*dpop.Transport); ok {
		hc := *c.HTTP
		hc.Transport = t.Base
		plain.HTTP, plain.key = &hc, nil
	}
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ClientID}, "refresh_token": {"kc-agent-dpop-probe"}}
	status, body, err := plain.post(ctx, c.meta.TokenURL, form)
	if err != nil {
		return false, unreachable("token endpoint", err)
	}
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	switch {
	case strings.Contains(tr.ErrorDescription, dpopMissing):
		return true, nil
	case status >= 500 || status == http.StatusTooManyRequests:
		return false, &Error{Kind: KindTransient, Status: status, Msg: fmt.Sprintf("the token endpoint answered HTTP %d to the DPoP probe", status)}
	}
	return false, nil
}

// DPoPMissing says whether err is the provider's refusal of a request
// without a proof ("DPoP proof is missing"): the realm demands proofs of
// the client, or the token is bound.
func DPoPMissing(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.Contains(e.Description, dpopMissing)
}

// BoundAccessError is the error of a login in dpop: refresh mode whose
// access tokens come back bound: the realm binds access tokens too, and
// a bound token served as Bearer would fail at every API.
func BoundAccessError(clientID string) error {
	return &Error{Kind: KindConfig,
		Msg: fmt.Sprintf("the identity provider binds the access tokens of client %s to the login's DPoP key (token type DPoP), and this profile serves Bearer tokens (dpop: refresh)", clientID),
		Hint: fmt.Sprintf("ask the Keycloak admin to turn on \"Bind only refresh token for public client\" (allow-only-refresh-token-binding) in the realm's client policy executor dpop-bind-enforcer for client %s (and to leave the client's own DPoP-bound tokens switch off); "+
			"or, if this profile's APIs accept DPoP tokens, set `dpop: on` for it", clientID)}
}
