package dpopapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenInfo is what the API learned of an access token at Keycloak.
type tokenInfo struct {
	Active bool   `json:"active"`
	User   string `json:"username"`
	Exp    int64  `json:"exp"`
	Cnf    struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// introspector checks access tokens at the realm's introspection endpoint
// (RFC 7662) as a confidential client, and remembers active answers until
// the token expires, as a real API caches them. Keycloak's introspection
// answers for a DPoP-bound token without a proof from its holder (its
// userinfo endpoint would want one).
type introspector struct {
	endpoint, clientID, secret string
	client                     *http.Client

	mu    sync.Mutex
	cache map[string]tokenInfo // by ATH(token)
	calls int
}

func newIntrospector(issuer, clientID, secret string) *introspector {
	return &introspector{endpoint: strings.TrimSuffix(issuer, "/") + "/protocol/openid-connect/token/introspect",
		clientID: clientID, secret: secret, client: &http.Client{Timeout: 10 * time.Second}, cache: map[string]tokenInfo{}}
}

// check answers what Keycloak says of at; errors are Keycloak not
// answering, never the token's verdict (Active says that).
func (in *introspector) check(ctx context.Context, at string, now time.Time) (tokenInfo, error) {
	key := ATH(at)
	in.mu.Lock()
	info, ok := in.cache[key]
	in.mu.Unlock()
	if ok && info.Exp > now.Unix() {
		return info, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(url.Values{"token": {at}}.Encode()))
	if err != nil {
		return tokenInfo{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	resp, err := in.client.Do(req)
	if err != nil {
		return tokenInfo{}, fmt.Errorf("Keycloak's introspection endpoint did not answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tokenInfo{}, fmt.Errorf("Keycloak's introspection endpoint answered HTTP %d", resp.StatusCode)
	}
	info = tokenInfo{}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return tokenInfo{}, errors.New("Keycloak's introspection answer is not JSON")
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls++
	if info.Active {
		if len(in.cache) > 10000 {
			in.cache = map[string]tokenInfo{}
		}
		in.cache[key] = info
	}
	return info, nil
}

// boundTo reads cnf.jkt out of a JWT access token's payload. Only a token
// Keycloak called active is read: its payload is the one Keycloak signed.
func boundTo(at string) string {
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		return ""
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if json.Unmarshal(data, &c) != nil {
		return ""
	}
	return c.Cnf.JKT
}
