//go:build unix

package keycloak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// RequireDPoP gives realm a client policy that makes every public client
// send DPoP proofs (Keycloak's dpop-bind-enforcer executor): what a realm
// admin does to "turn DPoP on". With refreshOnly, only refresh tokens are
// bound and access tokens stay Bearer ("Bind only refresh token for public
// client"). Use it on a realm of the test's own (CopyRealm): it replaces
// the realm's client profiles and policies.
func (a *Admin) RequireDPoP(ctx context.Context, realm string, refreshOnly bool) error {
	return a.requireDPoP(ctx, realm, refreshOnly, map[string]any{"condition": "client-access-type", "configuration": map[string]any{"type": []any{"public"}}})
}

// dpopAttribute is the client attribute RequireDPoPFor marks its clients
// with: Keycloak 26.7 has no condition on client ids, but one on client
// attributes.
const dpopAttribute = "kc-agent-test-dpop"

// RequireDPoPFor is RequireDPoP for the named clients only (by client id):
// the other clients of the realm send proofs or not, as they like.
func (a *Admin) RequireDPoPFor(ctx context.Context, realm string, refreshOnly bool, clientIDs ...string) error {
	for _, id := range clientIDs {
		if err := a.SetClientAttributes(ctx, realm, id, map[string]string{dpopAttribute: "required"}); err != nil {
			return err
		}
	}
	attrs, _ := json.Marshal([]map[string]string{{"key": dpopAttribute, "value": "required"}})
	return a.requireDPoP(ctx, realm, refreshOnly, map[string]any{"condition": "client-attributes", "configuration": map[string]any{"attributes": string(attrs)}})
}

func (a *Admin) requireDPoP(ctx context.Context, realm string, refreshOnly bool, condition map[string]any) error {
	profiles := map[string]any{"profiles": []any{map[string]any{
		"name": "dpop", "executors": []any{map[string]any{"executor": "dpop-bind-enforcer",
			"configuration": map[string]any{"auto-configure": "false", "allow-only-refresh-token-binding": strconv.FormatBool(refreshOnly)}}}}}}
	if err := a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/client-policies/profiles", profiles); err != nil {
		return err
	}
	policies := map[string]any{"policies": []any{map[string]any{
		"name": "dpop", "enabled": true, "profiles": []any{"dpop"}, "conditions": []any{condition}}}}
	return a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/client-policies/policies", policies)
}

// SetClientAttributes sets attributes of the client with that client id
// (e.g. "dpop.bound.access.tokens": "true", the client's own "require
// DPoP-bound tokens" switch, which the dpop-bind-enforcer's auto-configure
// turns on).
func (a *Admin) SetClientAttributes(ctx context.Context, realm, clientID string, set map[string]string) error {
	rep, err := a.client(ctx, realm, clientID)
	if err != nil {
		return err
	}
	attrs, _ := rep["attributes"].(map[string]any)
	if attrs == nil {
		attrs = map[string]any{}
	}
	for k, v := range set {
		attrs[k] = v
	}
	rep["attributes"] = attrs
	return a.send(ctx, http.MethodPut, "/admin/realms/"+realm+"/clients/"+fmt.Sprint(rep["id"]), rep)
}

// CopyClient adds client to realm, a copy of the client from (another
// client id, the same settings).
func (a *Admin) CopyClient(ctx context.Context, realm, from, client string) error {
	rep, err := a.client(ctx, realm, from)
	if err != nil {
		return err
	}
	delete(rep, "id")
	rep["clientId"] = client
	if pms, ok := rep["protocolMappers"].([]any); ok {
		for _, m := range pms {
			if mm, ok := m.(map[string]any); ok {
				delete(mm, "id")
			}
		}
	}
	return a.send(ctx, http.MethodPost, "/admin/realms/"+realm+"/clients", rep)
}

// client is the representation of the client with that client id.
func (a *Admin) client(ctx context.Context, realm, clientID string) (map[string]any, error) {
	var reps []map[string]any
	if err := a.Do(ctx, http.MethodGet, "/admin/realms/"+realm+"/clients?clientId="+url.QueryEscape(clientID), &reps); err != nil {
		return nil, err
	}
	if len(reps) != 1 {
		return nil, fmt.Errorf("client %s in realm %s: %d matches", clientID, realm, len(reps))
	}
	return reps[0], nil
}
