package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/atomicfile"
)

// The proxy's past addresses. A program that `kc-agent exec` or `env`
// started keeps the proxy address it was given for as long as it runs.
// With a fixed port or `listen: auto` the agent comes back to the same
// address; with
// `listen: 127.0.0.1:0` every start picks a new port, and the old one is
// free for anyone: another user who takes it receives that program's
// request bodies (the proxy secret too, useless to them: the proxy checks
// the caller's uid). The agent remembers the addresses it has served on so
// that status can warn about it.

const (
	portsFile = "proxy-ports.json"
	maxPorts  = 16 // addresses remembered, the oldest forgotten first
)

type portHistory struct {
	Served []string `json:"served"` // real addresses, oldest first
}

// loadPorts reads the addresses served before; a missing or unreadable
// file is an empty history (it only feeds a warning).
func loadPorts(stateDir string) []string {
	data, err := os.ReadFile(filepath.Join(stateDir, portsFile))
	if err != nil {
		return nil
	}
	var h portHistory
	if json.Unmarshal(data, &h) != nil {
		return nil
	}
	return h.Served
}

// servedOn adds addrs (the real addresses now served) to the history,
// writing the file when one is new. Called with p.mu held.
func (p *Proxy) servedOn(addrs []string) {
	changed := false
	for _, a := range addrs {
		if !slices.Contains(p.served, a) {
			p.served = append(p.served, a)
			changed = true
		}
	}
	if !changed {
		return
	}
	if len(p.served) > maxPorts {
		p.served = slices.Clone(p.served[len(p.served)-maxPorts:])
	}
	data, _ := json.Marshal(portHistory{Served: p.served})
	if err := atomicfile.Write(filepath.Join(p.stateDir, portsFile), append(data, '\n'), 0o600); err != nil {
		p.log.Warn("can not remember the proxy's address", "err", err.Error())
	}
}

// portWarning says, when a listener's port is picked at start (port 0)
// and the proxy served on other addresses before, that programs given an
// old address may now reach someone else, and what to do (hint). Called
// with p.mu held.
func (p *Proxy) portWarning(cfg *config.Config) (msg, hint string) {
	ephemeral := ""
	now := map[string]bool{}
	for configured, l := range p.listeners {
		now[l.addr] = true
		if _, port, err := net.SplitHostPort(listenAddr(configured)); err == nil && (port == "0" || port == "") && ephemeral == "" {
			ephemeral = listenAddr(configured)
		}
	}
	if ephemeral == "" {
		return "", ""
	}
	var old []string
	for i := len(p.served) - 1; i >= 0 && len(old) < 3; i-- {
		if !now[p.served[i]] {
			old = append(old, p.served[i])
		}
	}
	if len(old) == 0 {
		return "", ""
	}
	msg = fmt.Sprintf("the proxy's port is picked anew at each start (listen: %s), and this agent served on %s before: "+
		"programs started by `kc-agent exec` or `env` back then still send there, where another user may listen now",
		ephemeral, strings.Join(old, ", "))
	// On a shared host one fixed port serves only the first user, so
	// the advice there is an address of the user's own.
	hint = "restart those programs, and set proxy.listen: auto (an address of your own, from your uid) or a fixed port (e.g. 127.0.0.1:8421) so that the address survives restarts"
	if sys := cfg.SystemPath(); sys != "" {
		hint = "restart those programs; ask your administrator to set proxy.listen: auto in " + sys + " (an address of your own, the same at every start), or set it in your own config"
	}
	return msg, hint
}

// warningHint is what to do about one of the table's warnings (table.go),
// each of which names the setting it is about; "" for one this does not
// know, rather than a hint that fits another.
func warningHint(w string) string {
	if strings.Contains(w, "(unsafe_cleartext_upstream)") {
		return "use an https:// upstream; keep unsafe_cleartext_upstream only for a server you trust on a network you trust"
	}
	return ""
}
