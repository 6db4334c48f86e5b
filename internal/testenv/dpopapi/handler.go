package dpopapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// refusal is a 401 the API answers: the RFC 9449 error code, a reason for
// the counters, and a description (never a token or a proof).
type refusal struct {
	code, reason, desc string
	nonce              string // use_dpop_nonce: the nonce to send
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var user string
	var ref *refusal
	if s.opts.Mode == ModeBearer {
		user, ref = s.checkBearer(r)
	} else {
		user, ref = s.checkDPoP(r)
	}
	if ref != nil {
		s.refuse(w, ref)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		s.refused("body")
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	scheme := "DPoP"
	if s.opts.Mode == ModeBearer {
		scheme = "Bearer"
	}
	got := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, User: user, Scheme: scheme, Body: body}
	s.mu.Lock()
	s.stats.Accepted++
	s.lastGot = got
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"user": user, "scheme": scheme, "method": r.Method,
		"path": r.URL.Path, "query": r.URL.RawQuery, "body_bytes": len(body)})
}

func (s *Server) refuse(w http.ResponseWriter, ref *refusal) {
	if ref.code == "use_dpop_nonce" {
		w.Header().Set("DPoP-Nonce", ref.nonce)
	} else {
		s.refused(ref.reason)
	}
	scheme := "DPoP"
	if s.opts.Mode == ModeBearer {
		scheme = "Bearer"
	}
	challenge := scheme + ` algs="ES256"`
	if scheme == "Bearer" {
		challenge = "Bearer"
	}
	if ref.code != "" {
		challenge += fmt.Sprintf(`, error=%q, error_description=%q`, ref.code, ref.desc)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]string{"error": ref.code, "reason": ref.reason, "error_description": ref.desc})
}

// checkDPoP checks a DPoP request, RFC 9449 sections 4.3 and 7.1, and
// answers the token's user or why the request is refused.
func (s *Server) checkDPoP(r *http.Request) (string, *refusal) {
	scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "DPoP") || at == "" {
		code := ""
		if scheme != "" {
			code = "invalid_token"
		}
		return "", &refusal{code: code, reason: "no_dpop_token", desc: "send Authorization: DPoP <token> with a DPoP proof"}
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return "", &refusal{code: "invalid_dpop_proof", reason: "proof_missing", desc: "exactly one DPoP header is required"}
	}
	p, err := ParseProof(proofs[0])
	if err != nil {
		return "", &refusal{code: "invalid_dpop_proof", reason: "proof_" + Reason(err), desc: err.Error()}
	}
	if ref := s.checkClaims(r, p, at); ref != nil {
		return "", ref
	}
	info, ref := s.checkToken(r, at)
	if ref != nil {
		return "", ref
	}
	jkt := boundTo(at)
	if info.Cnf.JKT != "" {
		jkt = info.Cnf.JKT
	}
	if jkt == "" {
		return "", &refusal{code: "invalid_token", reason: "token_unbound", desc: "the access token is not DPoP-bound (no cnf.jkt)"}
	}
	if jkt != p.Thumbprint {
		return "", &refusal{code: "invalid_token", reason: "jkt_mismatch", desc: "the token is bound to another key than the proof's"}
	}
	return info.User, nil
}

// checkClaims checks what the proof says of this request: htm, htu, iat,
// ath, the key's nonce, and a jti never seen before.
func (s *Server) checkClaims(r *http.Request, p *Proof, at string) *refusal {
	bad := func(reason, desc string) *refusal {
		return &refusal{code: "invalid_dpop_proof", reason: reason, desc: desc}
	}
	if p.HTM != r.Method {
		return bad("htm", fmt.Sprintf("htm %q is not the request's method %s", p.HTM, r.Method))
	}
	if want := requestURI(r); !sameURI(p.HTU, want) {
		return bad("htu", fmt.Sprintf("htu %q is not the request's URI %q", p.HTU, want))
	}
	now := s.opts.Now()
	if d := now.Unix() - p.IAT; d > int64(s.opts.Window.Seconds()) || -d > int64(s.opts.Window.Seconds()) {
		return bad("iat", fmt.Sprintf("iat is %d s from the server's clock (window %s)", d, s.opts.Window))
	}
	if p.ATH != ATH(at) {
		return bad("ath", "ath is not the hash of the access token sent")
	}
	if want := s.expectedNonce(p.Thumbprint); want == "" || p.Nonce != want {
		n, _ := s.nonceFor(p.Thumbprint)
		return &refusal{code: "use_dpop_nonce", reason: "nonce", desc: "send this server's DPoP-Nonce in the proof", nonce: n}
	}
	if s.replayed(p.JTI, now) {
		return bad("jti_replay", "this proof (its jti) was used before")
	}
	return nil
}

// checkBearer checks a Bearer request: an active token at Keycloak that
// is not DPoP-bound.
func (s *Server) checkBearer(r *http.Request) (string, *refusal) {
	scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || at == "" {
		return "", &refusal{reason: "no_bearer_token", desc: "send Authorization: Bearer <token>"}
	}
	info, ref := s.checkToken(r, at)
	if ref != nil {
		return "", ref
	}
	if info.Cnf.JKT != "" || boundTo(at) != "" {
		return "", &refusal{code: "invalid_token", reason: "bound_as_bearer", desc: "a DPoP-bound token sent as a Bearer token"}
	}
	return info.User, nil
}

func (s *Server) checkToken(r *http.Request, at string) (tokenInfo, *refusal) {
	info, err := s.in.check(r.Context(), at, s.opts.Now())
	if err != nil {
		return tokenInfo{}, &refusal{code: "invalid_token", reason: "keycloak", desc: err.Error()}
	}
	if !info.Active {
		return tokenInfo{}, &refusal{code: "invalid_token", reason: "token_inactive", desc: "Keycloak says the token is not active"}
	}
	return info, nil
}

// requestURI is the URI a proof for r must name: scheme, host and path,
// no query or fragment.
func requestURI(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}).String()
}

// sameURI compares htu with the request's URI after RFC 3986
// normalisation of scheme and host case; query and fragment are ignored.
func sameURI(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}
