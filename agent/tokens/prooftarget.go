package tokens

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/kc-agent/kc-agent/agent/config"
)

// The agent signs proofs for APIs, never for the provider's own grant
// endpoints. Keycloak checks a proof's ath only where an access token is
// presented: at its token endpoint a proof of the login's key, ath or
// not, refreshes any copy of the offline token. So whoever reaches the
// socket or a route and has such a copy must get no proof for the token,
// revocation, logout, device, PAR, introspection or CIBA endpoints:
// neither for the URLs discovery names (any provider) nor for any path
// under protocol/openid-connect/ on any host (Keycloak answers under
// other host names too, behind a proxy), save userinfo, which checks ath.

// grantEndpointer is a provider client that names its grant endpoints
// (*oidc.Client).
type grantEndpointer interface {
	GrantEndpoints() []string
}

// checkProofTarget refuses a proof for htu (dpop.TargetURI's form) at one
// of the provider's grant endpoints.
func (m *Manager) checkProofTarget(ctx context.Context, name string, cfg config.Profile, htu string) error {
	u, err := url.Parse(htu)
	if err != nil {
		return &Error{Code: CodeBadRequest, Msg: "the request's URL is not a URL"}
	}
	if keycloakGrantPath(u.EscapedPath()) {
		return refusedTarget(htu)
	}
	client, err := m.NewClient(ctx, cfg)
	if err != nil {
		if iss, perr := url.Parse(cfg.Issuer); perr == nil && config.OriginKey(iss) == config.OriginKey(u) {
			return &Error{Code: CodeUnavailable, Msg: fmt.Sprintf("kc-agent could not read the endpoints of profile %q's identity provider, and signs no DPoP proof for a URL on its host until it can", name),
				Hint: "try again when the identity provider answers"}
		}
		return nil
	}
	g, ok := client.(grantEndpointer)
	if !ok {
		return nil
	}
	want := endpointKey(u)
	for _, ep := range g.GrantEndpoints() {
		if e, err := url.Parse(ep); err == nil && endpointKey(e) == want {
			return refusedTarget(htu)
		}
	}
	return nil
}

func refusedTarget(htu string) error {
	return &Error{Code: CodeForbidden,
		Msg: fmt.Sprintf("kc-agent signs no DPoP proof for %s: it is one of the identity provider's token, logout or device endpoints, "+
			"where a proof of the login's key would let a copy of its tokens be refreshed or used outside the agent", htu),
		Hint: "proofs are for APIs; kc-agent itself talks to the identity provider (for an access token: `kc-agent token`, or /v1/token)"}
}

// keycloakGrantPath says whether path is under Keycloak's
// protocol/openid-connect/ (but not its userinfo), read as a server could
// read it: raw or percent-decoded, any case, without matrix parameters,
// empty or dot segments.
func keycloakGrantPath(path string) bool {
	for _, decode := range []bool{false, true} {
		segs := pathSegments(path, decode)
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] == "protocol" && segs[i+1] == "openid-connect" && !(len(segs) == i+3 && segs[i+2] == "userinfo") {
				return true
			}
		}
	}
	return false
}

// pathSegments is path's segments in lower case, "." and ".." resolved,
// empty ones and ";" parameters dropped, a backslash taken for a slash;
// percent-decoded first with decode.
func pathSegments(path string, decode bool) []string {
	if decode {
		if d, err := url.PathUnescape(path); err == nil {
			path = d
		}
	}
	var out []string
	for _, s := range strings.Split(strings.ReplaceAll(path, `\`, "/"), "/") {
		s, _, _ = strings.Cut(s, ";")
		switch s = strings.ToLower(s); s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return out
}

// endpointKey is u's origin and decoded path, as pathSegments reads it.
func endpointKey(u *url.URL) string {
	return config.OriginKey(u) + "/" + strings.Join(pathSegments(u.EscapedPath(), true), "/")
}
