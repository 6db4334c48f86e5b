package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// handleProof answers POST /v1/proof: the profile's access token and, when
// it is DPoP-bound, a proof for the caller's request signed in the agent.
func (d *Daemon) handleProof(w http.ResponseWriter, r *http.Request) {
	var req ipc.ProofRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	if e := validateProofRequest(&req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 40*time.Second)
	defer cancel()
	p, err := d.mgr.Proof(ctx, tokens.ProofRequest{
		Request: tokens.Request{Profile: req.Profile, Scopes: req.Scopes,
			MinValid: time.Duration(req.MinValid * float64(time.Second)), Force: req.ForceRefresh},
		Method: req.Method, URL: req.URL, Nonce: req.Nonce})
	if err != nil {
		ipc.WriteError(w, d.apiError(req.Profile, err))
		return
	}
	ipc.WriteJSON(w, http.StatusOK, ipc.ProofResponse{
		AccessToken: p.Token, TokenType: p.Type, Proof: p.Proof,
		ExpiresAt: p.ExpiresAt.UTC().Truncate(time.Second),
		ExpiresIn: int64(time.Until(p.ExpiresAt) / time.Second),
	})
}

// validateProofRequest checks a proof request: what a token request
// checks, and the request to prove (ipc.CheckProofTarget).
func validateProofRequest(req *ipc.ProofRequest) *ipc.Error {
	tr := ipc.TokenRequest{Profile: req.Profile, Scopes: req.Scopes, MinValid: req.MinValid}
	if e := validateTokenRequest(&tr); e != nil {
		return e
	}
	req.Profile = tr.Profile
	if err := ipc.CheckProofTarget(req.Method, req.URL, req.Nonce); err != nil {
		return &ipc.Error{Code: ipc.CodeBadRequest, Message: err.Error()}
	}
	return nil
}
