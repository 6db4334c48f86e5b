package proxy

import (
	"net/http"
	"strings"
)

// Cookies on reverse routes. Every route on the main port shares one
// browser origin (and cookies do not even tell ports apart, RFC 6265
// §8.5), so an upstream's `Set-Cookie: sid=…; Path=/` would come back with
// the user's next request through every other route, to every other
// upstream. kc-agent therefore scopes cookies to the route that set them:
//
//   - on the main port, Path is mapped from the upstream's path space onto
//     the route's: Path=/ (or any path above the upstream's base) becomes
//     the route's prefix, /base/x becomes /<route>/x, a missing Path
//     becomes the route's prefix (the browser's default would be "/" for a
//     request to /<route>), and a cookie for a path the route never
//     reaches is dropped;
//   - Domain is removed: the cookie stays with the host the client used
//     (an upstream's own domain would be refused by the browser anyway,
//     and a parent domain would widen it);
//   - on a route's own port there is no path to scope to, and cookies
//     reach every port of the host: its cookies are dropped.
//
// Scoping rather than dropping everywhere keeps what scripts rely on
// (requests.Session keeping a load balancer's sticky-session cookie)
// working on the main port.
//
// Paths alone do not keep other cookies out: the browser sends every
// cookie it holds for 127.0.0.1 with Path=/ (Jupyter's login cookie
// username-127-0-0-1-8888 and its _xsrf, any local app's) with a request
// to a route, and those must never leave the machine. So a route's cookies
// also carry its namespace in their name: sid becomes kcr_<route>~sid on
// the way out, and on the way in (routeCookies) the upstream gets only the
// cookies in its route's namespace, with their own names back.
func scopeCookies(h http.Header, ob *outbound) {
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 {
		return
	}
	h.Del("Set-Cookie")
	if ob.prefix == "" {
		return
	}
	for _, line := range lines {
		if out, ok := scopeCookie(line, strings.TrimSuffix(ob.upstream.Path, "/"), ob.prefix); ok {
			h.Add("Set-Cookie", out)
		}
	}
}

// cookieNS is the start of the names of a route's cookies in the browser
// (and in a script's cookie jar). '~' is in no route name, so no route's
// namespace is the start of another's.
func cookieNS(route string) string { return "kcr_" + route + "~" }

// routeCookies is the Cookie header for the upstream of the route whose
// cookies start with ns (cookieNS): only the pairs in that namespace, with
// their own names, in order; "" when there are none, and always for ns ""
// (a route on its own port, which keeps no cookies).
func routeCookies(headers []string, ns string) string {
	if ns == "" {
		return ""
	}
	var kept []string
	for _, h := range headers {
		for _, pair := range strings.Split(h, ";") {
			name, value, ok := strings.Cut(pair, "=")
			if !ok {
				continue
			}
			own, mine := strings.CutPrefix(strings.Trim(name, " \t"), ns)
			if mine && own != "" {
				kept = append(kept, own+"="+strings.Trim(value, " \t"))
			}
		}
	}
	return strings.Join(kept, "; ")
}

// scopeCookie rewrites one Set-Cookie value from an upstream whose base
// path is base (no trailing slash) for the local route prefix ("/<route>"):
// the name into the route's namespace, the path onto the route's; false:
// drop it.
func scopeCookie(line, base, prefix string) (string, bool) {
	parts := strings.Split(line, ";")
	name, value, ok := strings.Cut(parts[0], "=")
	name = strings.Trim(name, " \t")
	if !ok || name == "" {
		return "", false // a nameless cookie can not be told apart from others
	}
	kept := []string{cookieNS(strings.TrimPrefix(prefix, "/")) + name + "=" + strings.Trim(value, " \t")}
	cookiePath := ""
	for _, attr := range parts[1:] {
		name, value, _ := strings.Cut(attr, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "path":
			cookiePath = strings.TrimSpace(value) // the last one counts
		case "domain":
		default:
			kept = append(kept, attr)
		}
	}
	local := prefix
	switch {
	case !strings.HasPrefix(cookiePath, "/"):
		// None, or invalid (the browser would use its default path).
	case base != "" && (cookiePath == base || strings.HasPrefix(cookiePath, base+"/")):
		local = prefix + strings.TrimPrefix(cookiePath, base)
	case base == "":
		local = prefix + cookiePath
	case !pathMatch(base, cookiePath):
		return "", false // for upstream paths outside the route
	}
	if local == prefix+"/" {
		local = prefix
	}
	if strings.ContainsAny(local, ";\r\n") {
		return "", false
	}
	return strings.Join(append(kept, " Path="+local), ";"), true
}

// pathMatch is RFC 6265's path-match: whether a cookie with cookiePath is
// sent with a request for reqPath.
func pathMatch(reqPath, cookiePath string) bool {
	if reqPath == cookiePath {
		return true
	}
	if !strings.HasPrefix(reqPath, cookiePath) {
		return false
	}
	return strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
}

// ownCookies replaces the Cookie header of a request to a reverse route
// with the route's own cookies (routeCookies), or none.
func ownCookies(h http.Header, ob *outbound) {
	ns := ""
	if ob.prefix != "" {
		ns = cookieNS(strings.TrimPrefix(ob.prefix, "/"))
	}
	c := routeCookies(h.Values("Cookie"), ns)
	h.Del("Cookie")
	if c != "" {
		h.Set("Cookie", c)
	}
}
