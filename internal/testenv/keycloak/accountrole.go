//go:build unix

package keycloak

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// GrantAccountRole gives a user a role of the realm's account client
// (e.g. manage-account, which a realm's default roles give new users; the
// test realms' users are imported with their roles listed, so they lack
// it). Use it on a realm copy (CopyRealm), never on a shared realm.
func (a *Admin) GrantAccountRole(ctx context.Context, realm, username, role string) error {
	uid, err := a.UserID(ctx, realm, username)
	if err != nil {
		return err
	}
	var clients []struct {
		ID string `json:"id"`
	}
	if err := a.Do(ctx, http.MethodGet, "/admin/realms/"+realm+"/clients?clientId=account", &clients); err != nil {
		return err
	}
	if len(clients) != 1 {
		return fmt.Errorf("realm %s: client account not found", realm)
	}
	var rep map[string]any
	base := "/admin/realms/" + realm + "/clients/" + clients[0].ID
	if err := a.Do(ctx, http.MethodGet, base+"/roles/"+url.PathEscape(role), &rep); err != nil {
		return err
	}
	return a.send(ctx, http.MethodPost, "/admin/realms/"+realm+"/users/"+uid+"/role-mappings/clients/"+clients[0].ID, []any{rep})
}
