//go:build unix

package keycloak

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

// ServeUserinfoAPI is a small API for the demo that checks each request's
// bearer token at Keycloak (the realm's userinfo endpoint, which refuses
// a token that is expired, revoked or from another realm) and answers who
// the token belongs to. It listens on ln until ctx ends.
func ServeUserinfoAPI(ctx context.Context, ln net.Listener, issuer string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "no bearer token"})
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", issuer+"/protocol/openid-connect/userinfo", nil)
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(map[string]string{"error": "Keycloak did not answer"})
			return
		}
		defer resp.Body.Close()
		var info map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "Keycloak refused the token"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"user":       info["preferred_username"],
			"email":      info["email"],
			"checked_at": "Keycloak userinfo: " + resp.Status,
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
