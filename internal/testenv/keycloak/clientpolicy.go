//go:build unix

package keycloak

import (
	"context"
	"net/http"
	"strconv"
)

// RequireDPoP gives realm a client policy that makes every public client
// send DPoP proofs (Keycloak's dpop-bind-enforcer executor): what a realm
// admin does to "turn DPoP on". With refreshOnly, only refresh tokens are
// bound and access tokens stay Bearer ("Bind only refresh token for public
// client"). Use it on a realm of the test's own (CopyRealm): it replaces
// the realm's client profiles and policies.
func (a *Admin) RequireDPoP(ctx context.Context, realm string, refreshOnly bool) error {
	profiles := map[string]any{"profiles": []any{map[string]any{
		"name": "dpop", "executors": []any{map[string]any{"executor": "dpop-bind-enforcer",
			"configuration": map[string]any{"auto-configure": "false", "allow-only-refresh-token-binding": strconv.FormatBool(refreshOnly)}}}}}}
	if err := a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/client-policies/profiles", profiles); err != nil {
		return err
	}
	policies := map[string]any{"policies": []any{map[string]any{
		"name": "dpop", "enabled": true, "profiles": []any{"dpop"},
		"conditions": []any{map[string]any{"condition": "client-access-type", "configuration": map[string]any{"type": []any{"public"}}}}}}}
	return a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/client-policies/policies", policies)
}
