//go:build unix

package keycloak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// CopyRealm creates realm name on the running server from the realm file
// of from (realms/<from>.json), with the top-level settings in set
// changed (e.g. "oauth2DevicePollingInterval": 5). A realm of that name
// is deleted first. Benchmarks use it to vary a realm setting without
// touching the realms other tests share; delete it with DeleteRealm.
func (a *Admin) CopyRealm(ctx context.Context, from, name string, set map[string]any) error {
	data, err := realmFiles.ReadFile("realms/" + from + ".json")
	if err != nil {
		return err
	}
	var realm map[string]any
	if err := json.Unmarshal(data, &realm); err != nil {
		return err
	}
	realm["realm"] = name
	delete(realm, "id")
	for k, v := range set {
		realm[k] = v
	}
	_ = a.DeleteRealm(ctx, name)
	return a.send(ctx, http.MethodPost, "/admin/realms", realm)
}

// SetRealm changes top-level settings of a realm.
func (a *Admin) SetRealm(ctx context.Context, name string, set map[string]any) error {
	return a.send(ctx, http.MethodPut, "/admin/realms/"+name, set)
}

// DeleteRealm deletes a realm.
func (a *Admin) DeleteRealm(ctx context.Context, name string) error {
	return a.Do(ctx, http.MethodDelete, "/admin/realms/"+name, nil)
}

func (a *Admin) send(ctx context.Context, method, path string, in any) error {
	tok, err := a.token(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, method, a.s.BaseURL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	return nil
}
