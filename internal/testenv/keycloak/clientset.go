//go:build unix

package keycloak

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// SetClient changes settings of a realm's client (by clientId), e.g.
// {"directAccessGrantsEnabled": true}. Use it on a realm of the test's
// own (CopyRealm).
func (a *Admin) SetClient(ctx context.Context, realm, clientID string, set map[string]any) error {
	var clients []struct {
		ID string `json:"id"`
	}
	if err := a.Do(ctx, http.MethodGet, "/admin/realms/"+realm+"/clients?clientId="+url.QueryEscape(clientID), &clients); err != nil {
		return err
	}
	if len(clients) != 1 {
		return fmt.Errorf("client %s of realm %s: %d matches", clientID, realm, len(clients))
	}
	return a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/clients/"+clients[0].ID, set)
}
