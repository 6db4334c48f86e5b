package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/ipc"
)

// A route's token failure in the words of whoever meets it: a notebook
// (Python HTTP libraries) and a browser get plain words and their way
// out; curl and other tools keep the agent's message and the CLI's hint.
func TestTokenFailureWords(t *testing.T) {
	const msg, hint = `kc-agent has no valid token for this route: profile "default" is not logged in`, "run `kc-agent login` to sign in again"
	for _, c := range []struct {
		name, code     string
		headers        map[string]string
		wantMsg, wantH string
	}{
		{"requests", ipc.CodeLoginRequired, map[string]string{"User-Agent": "python-requests/2.32.3"}, "this route needs you to sign in first", "kc_agent_client.login() in a notebook cell"},
		{"httpx", ipc.CodeLoginRequired, map[string]string{"User-Agent": "python-httpx/0.28.1"}, "this route needs you to sign in first", "kc_agent_client.login() in a notebook cell"},
		{"urllib", ipc.CodeUnavailable, map[string]string{"User-Agent": "Python-urllib/3.11"}, "could not be reached to renew your access", "try again in a minute"},
		{"browser", ipc.CodeLoginRequired, map[string]string{"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}, "this route needs you to sign in first", "then reload this page"},
		{"browser-502", ipc.CodeUpstream, map[string]string{"Sec-Fetch-Mode": "navigate"}, "could not be reached", "try again in a minute"},
		{"curl", ipc.CodeLoginRequired, map[string]string{"User-Agent": "curl/8.5.0", "Accept": "*/*"}, msg, hint},
		{"python-bad-request", ipc.CodeInvalidScope, map[string]string{"User-Agent": "python-requests/2.32.3"}, msg, hint},
	} {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8421/warehouse/tables", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		m, h := tokenFailureWords(r, c.code, msg, hint)
		if !strings.Contains(m, c.wantMsg) || !strings.Contains(h, c.wantH) {
			t.Errorf("%s: %q / %q", c.name, m, h)
		}
		if c.wantMsg != msg && (strings.Contains(strings.ReplaceAll(h, "login()", ""), "(") || strings.Contains(m, "kc-agent has")) {
			t.Errorf("%s: not plain words: %q / %q", c.name, m, h)
		}
	}
}
