package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
)

// The proxy's past addresses. A program that `kc-agent exec` or `env`
// started keeps the proxy address it was given for as long as it runs.
// With a fixed port the agent comes back to the same address; with
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
// old address may now reach someone else. Called with p.mu held.
func (p *Proxy) portWarning() string {
	ephemeral := ""
	now := map[string]bool{}
	for configured, l := range p.listeners {
		now[l.addr] = true
		if _, port, err := net.SplitHostPort(listenAddr(configured)); err == nil && (port == "0" || port == "") && ephemeral == "" {
			ephemeral = listenAddr(configured)
		}
	}
	if ephemeral == "" {
		return ""
	}
	var old []string
	for i := len(p.served) - 1; i >= 0 && len(old) < 3; i-- {
		if !now[p.served[i]] {
			old = append(old, p.served[i])
		}
	}
	if len(old) == 0 {
		return ""
	}
	return fmt.Sprintf("the proxy's port is picked anew at each start (listen: %s), and this agent served on %s before: "+
		"programs started by `kc-agent exec` or `env` back then still send there, where another user may listen now; "+
		"restart them, and set a fixed port (e.g. proxy.listen: 127.0.0.1:8421) so that the address survives restarts",
		ephemeral, strings.Join(old, ", "))
}
