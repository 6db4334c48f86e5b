//go:build unix

package keycloak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Admin calls Keycloak's admin REST API as the bootstrap admin.
type Admin struct {
	s *Server
}

// Admin returns an admin API client.
func (s *Server) Admin() *Admin { return &Admin{s: s} }

func (a *Admin) token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"}, "username": {"admin"}, "password": {"admin"}}
	req, _ := http.NewRequestWithContext(ctx, "POST", a.s.BaseURL+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("admin token: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// Do calls the admin API; path starts with /admin/realms/...
func (a *Admin) Do(ctx context.Context, method, path string, out any) error {
	tok, err := a.token(ctx)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, method, a.s.BaseURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, body)
	}
	if out != nil && len(body) > 0 {
		return json.Unmarshal(body, out)
	}
	return nil
}

// UserID looks a user up by name.
func (a *Admin) UserID(ctx context.Context, realm, username string) (string, error) {
	var users []struct {
		ID string `json:"id"`
	}
	if err := a.Do(ctx, "GET", "/admin/realms/"+realm+"/users?exact=true&username="+url.QueryEscape(username), &users); err != nil {
		return "", err
	}
	if len(users) != 1 {
		return "", fmt.Errorf("user %s: %d matches", username, len(users))
	}
	return users[0].ID, nil
}

// OfflineSessions lists the user's offline session ids for the kc-agent client.
func (a *Admin) OfflineSessions(ctx context.Context, realm, username string) ([]string, error) {
	uid, err := a.UserID(ctx, realm, username)
	if err != nil {
		return nil, err
	}
	var clients []struct {
		ID string `json:"id"`
	}
	if err := a.Do(ctx, "GET", "/admin/realms/"+realm+"/clients?clientId=kc-agent", &clients); err != nil {
		return nil, err
	}
	if len(clients) != 1 {
		return nil, fmt.Errorf("client kc-agent not found")
	}
	var sessions []struct {
		ID string `json:"id"`
	}
	if err := a.Do(ctx, "GET", "/admin/realms/"+realm+"/users/"+uid+"/offline-sessions/"+clients[0].ID, &sessions); err != nil {
		return nil, err
	}
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID
	}
	return ids, nil
}

// RevokeOfflineSessions ends every offline session of the user, as an
// administrator would.
func (a *Admin) RevokeOfflineSessions(ctx context.Context, realm, username string) error {
	ids, err := a.OfflineSessions(ctx, realm, username)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := a.Do(ctx, "DELETE", "/admin/realms/"+realm+"/sessions/"+id+"?isOffline=true", nil); err != nil {
			return err
		}
	}
	return nil
}

// CountEvents counts the realm's events of a type (e.g. REFRESH_TOKEN) for a user.
func (a *Admin) CountEvents(ctx context.Context, realm, typ, username string) (int, error) {
	q := "/admin/realms/" + realm + "/events?type=" + typ + "&max=100000"
	if username != "" {
		uid, err := a.UserID(ctx, realm, username)
		if err != nil {
			return 0, err
		}
		q += "&user=" + uid
	}
	var evs []json.RawMessage
	if err := a.Do(ctx, "GET", q, &evs); err != nil {
		return 0, err
	}
	return len(evs), nil
}

// DirectRefresh posts a refresh grant straight to Keycloak, bypassing
// kc-agent, and reports the HTTP status and OAuth error code.
func (s *Server) DirectRefresh(ctx context.Context, realm, refreshToken string) (status int, oauthErr string, err error) {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {refreshToken}}
	req, _ := http.NewRequestWithContext(ctx, "POST", s.Issuer(realm)+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error, nil
}
