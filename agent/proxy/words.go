package proxy

import (
	"net/http"
	"strings"

	"github.com/kc-agent/kc-agent/ipc"
)

// Who meets a route's token failure, for the words of the answer.
const (
	callerTool    = iota // curl, a script: the CLI's words
	callerPython         // requests, httpx, urllib: most likely a notebook
	callerBrowser        // a page typed or bookmarked (allow_browser routes)
)

// callerOf guesses who sent r from headers a browser or a Python HTTP
// library always sets. Only the wording depends on it, never access.
func callerOf(r *http.Request) int {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html") {
		return callerBrowser
	}
	ua := strings.ToLower(r.Header.Get("User-Agent"))
	for _, p := range []string{"python-requests/", "python-httpx/", "python-urllib/", "aiohttp/"} {
		if strings.HasPrefix(ua, p) {
			return callerPython
		}
	}
	return callerTool
}

// tokenFailureWords rewrites why a route has no token for the analyst in a
// notebook or a browser: what happened in plain words, and the way out
// where they are. Tools keep the agent's own message and the CLI's hint.
func tokenFailureWords(r *http.Request, code, msg, hint string) (string, string) {
	who := callerOf(r)
	if who == callerTool {
		return msg, hint
	}
	switch {
	case code == ipc.CodeLoginRequired && who == callerPython:
		return "this route needs you to sign in first", "run kc_agent_client.login() in a notebook cell, or `kc-agent login` in a terminal"
	case code == ipc.CodeLoginRequired:
		return "this route needs you to sign in first", "run `kc-agent login` in a terminal, or kc_agent_client.login() in a notebook, then reload this page"
	case ipc.HTTPStatus(code) == http.StatusBadGateway || ipc.HTTPStatus(code) == http.StatusServiceUnavailable:
		return "the sign-in server could not be reached to renew your access", "try again in a minute; if it keeps failing, `kc-agent status` in a terminal says why"
	}
	return msg, hint
}
