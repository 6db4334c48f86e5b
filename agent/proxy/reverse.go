package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/routepath"
	"github.com/kc-agent/kc-agent/ipc"
)

// serveReverse forwards r to rt's upstream with the token. prefix is the
// local path prefix: "/name" on the main port, "" on the route's own.
func (p *Proxy) serveReverse(w http.ResponseWriter, r *http.Request, t *table, rt *route, prefix string) {
	if r.URL.IsAbs() || r.Method == http.MethodConnect {
		writeError(w, ipc.CodeBadRequest, "this port serves a reverse route, not a forward proxy", "")
		return
	}
	if !config.IsLoopbackHost(r.Host) {
		p.refuse(w, r, reasonHost, ipc.CodeNotLoopback, fmt.Sprintf("Host %q is not a loopback address", r.Host),
			"use http://127.0.0.1:PORT/ (names that resolve to loopback are refused: DNS rebinding)")
		return
	}
	if routepath.Unsafe(r.URL.Path) {
		p.refuse(w, r, reasonPath, ipc.CodeUnsafePath, "the path has . or .. segments (or a backslash), which could leave the route's base path",
			"send the path without dot segments")
		return
	}
	base := &url.URL{Scheme: "http", Host: r.Host, Path: prefix}
	if why := browserCheck(r, rt, base); why != "" {
		p.refuse(w, r, reasonBrowser, ipc.CodeBrowser, why, "call the route from a script or notebook, not from a browser page")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	rawRest := ""
	if r.URL.RawPath != "" {
		rawRest = strings.TrimPrefix(r.URL.RawPath, prefix)
	}
	if prefix != "" && rest == r.URL.Path {
		rest = "/"
	}
	ob := &outbound{upstream: rt.upstream, path: rest, rawPath: rawRest,
		prefix: prefix, local: "http://" + r.Host, sandbox: true, unsafeCleartext: rt.UnsafeCleartextUpstream}
	if !p.token(w, r, rt, ob) {
		return
	}
	t.forward(w, r, ob)
}

func routeName(p string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return name
}
