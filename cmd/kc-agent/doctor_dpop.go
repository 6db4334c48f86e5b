package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
)

// dpopChecks say which DPoP mode is configured, what the realm needs (does
// discovery advertise DPoP, does the token endpoint demand proofs of the
// client) and whether the stored login (rec, nil if none) is bound to the
// stored key.
func dpopChecks(ctx context.Context, name string, prof config.Profile, client *oidc.Client, rec *store.Record) []check {
	mode := prof.DPoPMode()
	checks := []check{{"dpop mode", "ok", mode + map[bool]string{true: " (the default)"}[mode == config.DPoPAuto], ""}}
	if client != nil {
		checks = append(checks, realmDPoPCheck(ctx, prof, client))
	}
	if rec != nil {
		checks = append(checks, loginBindingCheck(ctx, name, prof, *rec))
	}
	return checks
}

// realmDPoPCheck probes whether the realm demands proofs of the client.
func realmDPoPCheck(ctx context.Context, prof config.Profile, client *oidc.Client) check {
	mode := prof.DPoPMode()
	if !client.AdvertisesDPoP() {
		if mode == config.DPoPRefresh || mode == config.DPoPOn {
			return check{"realm dpop", "FAIL", "the issuer does not advertise DPoP (no dpop_signing_alg_values_supported)", "set `dpop: auto` or `off` for this profile"}
		}
		return check{"realm dpop", "ok", "the issuer does not advertise DPoP: logins are not bound", ""}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	demands, err := client.ProbeDPoP(pctx)
	cancel()
	switch {
	case err != nil:
		return check{"realm dpop", "warn", "could not ask the token endpoint: " + err.Error(), oidc.HintOf(err)}
	case demands && mode == config.DPoPOff:
		return check{"realm dpop", "FAIL", fmt.Sprintf("the realm demands DPoP proofs of client %s (dpop-bind-enforcer), and this profile has dpop: off", prof.ClientID),
			"set `dpop: auto` (the default) or `dpop: refresh` for this profile, then run `kc-agent login`"}
	case demands:
		return check{"realm dpop", "ok", fmt.Sprintf("advertised; the realm demands proofs of client %s (dpop-bind-enforcer): logins are bound", prof.ClientID), ""}
	case mode == config.DPoPAuto:
		return check{"realm dpop", "ok", fmt.Sprintf("advertised; the realm does not demand proofs of client %s: with auto, logins are not bound", prof.ClientID), ""}
	}
	return check{"realm dpop", "ok", fmt.Sprintf("advertised; the realm does not demand proofs of client %s (with dpop: %s logins are bound all the same)", prof.ClientID, mode), ""}
}

// loginBindingCheck: is the stored login bound, and to the stored key?
func loginBindingCheck(ctx context.Context, name string, prof config.Profile, rec store.Record) check {
	login := tokens.LoginMode(rec)
	if login == config.DPoPOff {
		if m := prof.DPoPMode(); m == config.DPoPRefresh || m == config.DPoPOn {
			return check{"login binding", "warn", "the stored login is not bound to a key (made before dpop: " + m + ")",
				"sign in again to bind it: `kc-agent login` (in a notebook: login(force=True))"}
		}
		return check{"login binding", "ok", "the stored login is not bound to a key", ""}
	}
	detail := fmt.Sprintf("bound to a key (made in mode %s)", login)
	again := "run `kc-agent login` to sign in again with a new key"
	ks, err := tokens.KeysFor(prof)
	var key crypto.Signer
	if err == nil {
		key, err = ks.Get(ctx, name)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return check{"login binding", "FAIL", detail + ", but the key is missing (restored from a backup without it?)", again}
	case errors.Is(err, store.ErrKeyUnusable):
		return check{"login binding", "FAIL", detail + ", but the stored key is not usable here: " + err.Error(), again}
	case err != nil:
		return check{"login binding", "warn", detail + "; could not read the key: " + err.Error(), ""}
	}
	jkt, _ := dpop.Thumbprint(key)
	if bound := tokens.BoundJKT(rec.RefreshToken); jkt != rec.KeyThumbprint || bound != "" && bound != jkt {
		return check{"login binding", "FAIL", detail + ", but the stored key is another one", again}
	}
	where := "a software key in " + ks.Describe()
	if store.KeyKind(key) == "tpm" {
		where = "a key in this machine's TPM (not exportable; the store holds its TPM-wrapped blob)"
	}
	return check{"login binding", "ok", detail + "; cnf.jkt matches the stored key, " + where, ""}
}
