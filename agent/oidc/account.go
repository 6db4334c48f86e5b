package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrAccountRefused marks an Account REST API call Keycloak refused for
// the login: the realm has no account API, or the user lacks the
// manage-account role of the account client. Only an administrator (or
// the user in the account console) can then end the user's other
// sessions.
var ErrAccountRefused = errors.New("the identity provider's account API refused to end the user's other sessions")

// EndAllSessions ends every offline session of the user for this client,
// on every machine: it refreshes refreshToken for an access token and
// asks Keycloak's Account REST API to remove the user's access to the
// client (DELETE {issuer}/account/applications/{client}/consent, what the
// account console's Applications page does), which revokes the user's
// consent and all of their offline tokens for the client. RFC 7009
// revocation of one offline token ends that one session only (Keycloak
// 26.7). A refusal by the account API is ErrAccountRefused.
func (c *Client) EndAllSessions(ctx context.Context, refreshToken string) error {
	tok, err := c.Refresh(ctx, refreshToken, nil)
	if err != nil {
		return err
	}
	endpoint := strings.TrimRight(c.meta.Issuer, "/") + "/account/applications/" + url.PathEscape(c.ClientID) + "/consent"
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint, nil)
	if err != nil {
		return err
	}
	// A bound access token goes as DPoP; the transport of a client with a
	// key signs the proof, with the token's hash (ath).
	scheme := "Bearer"
	if strings.EqualFold(tok.TokenType, "DPoP") && c.key != nil {
		scheme = "DPoP"
	}
	req.Header.Set("Authorization", scheme+" "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return unreachable("account API", scrubURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		why := "the user has no role of the realm's account client, such as manage-account"
		if scheme == "DPoP" {
			why += ", or it refused the DPoP proof"
		}
		return fmt.Errorf("%w: HTTP 401, the login's access token is not accepted there (Keycloak: %s)", ErrAccountRefused, why)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: HTTP 403, the user lacks the manage-account role of the realm's account client%s", ErrAccountRefused, accountReason(body))
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: HTTP 404, the realm has no account API%s", ErrAccountRefused, accountReason(body))
	default:
		return &Error{Kind: KindTransient, Msg: fmt.Sprintf("the identity provider's account API answered HTTP %d%s", resp.StatusCode, accountReason(body))}
	}
}

// accountReason is the account API's error text, if it gave one: its
// errorMessage or error field (never a token; the API does not echo it).
func accountReason(body []byte) string {
	var e struct {
		Error        string `json:"error"`
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.ErrorMessage
	if msg == "" {
		msg = e.Error
	}
	if msg == "" || len(msg) > 200 {
		return ""
	}
	return ": " + msg
}
