package config

import (
	"net"
	"runtime"
	"strconv"
	"sync"
)

// ListenAuto is the proxy.listen value that gives every user of a machine
// a proxy address of their own, derived from their user number: one line
// in the administrator's system-wide file serves a whole shared host.
//
// A fixed port in a shared file serves only the first user to start an
// agent; a port picked at each start (127.0.0.1:0) moves on restart, and a
// URL a notebook kept then reaches whoever took the old port next. An
// address derived from the uid is the same at every start and no other
// user's agent ever binds it, so a kept URL can only reach its owner's
// agent (or a deliberate squatter, which the proxy's callers that check
// listeners refuse and which the agent waits out).
//
// Linux has the whole of 127.0.0.0/8 on the loopback interface, so each
// user gets an address of their own, 127.1.0.0 + uid, on the one port
// 8421: readable (uid 1000 is 127.1.3.232), no port of anyone else's, and
// one-to-one for every uid (uids past 127.255.255.254 move to the next
// port). 127.0.0.0/16 stays out: 127.0.0.1 is where everyone's fixed ports
// and other servers are, 127.0.0.53 and 127.0.1.1 are taken by resolvers
// and hostnames. Elsewhere only 127.0.0.1 is up (macOS), or it is not
// known to be (Windows), so the user's number picks a port in
// 20000-32767, below every system's ephemeral range: one-to-one for
// numbers within 12768 of each other (local accounts), and a collision
// beyond that is seen (the agent waits and says why) but not avoided;
// there, set a fixed proxy.listen.
const ListenAuto = "auto"

const (
	autoPort    = 8421
	autoBase    = 127<<24 | 1<<16         // 127.1.0.0
	autoSpan    = 1<<24 - 1<<16 - 1       // 127.1.0.0 ... 127.255.255.254
	autoPortMin = 20000                   // the port range off Linux
	autoPorts   = 32768 - autoPortMin     // up to Linux's ephemeral range
	perUserIP   = runtime.GOOS == "linux" // the whole 127/8 is on lo
)

// AutoListen is the address proxy.listen: auto means for the user with
// number id (the uid; on Windows the RID of the user's SID), with a
// per-user loopback address (Linux) or a per-user port on 127.0.0.1.
func AutoListen(id uint32, perUserAddress bool) string {
	if !perUserAddress {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(autoPortMin+int(id%autoPorts)))
	}
	n := autoBase + id%autoSpan
	ip := net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return net.JoinHostPort(ip.String(), strconv.Itoa(autoPort+int(id/autoSpan)))
}

// autoListen is this user's auto address; "auto" itself when the user's
// number can not be found, which listening then refuses as not host:port.
var autoListen = sync.OnceValue(func() string {
	id, err := userNumber()
	if err != nil {
		return ListenAuto
	}
	return AutoListen(id, perUserIP)
})

// ListenAdvice is what to do when someone else holds the proxy's address
// under this config (c may be nil: not known). Never a port picked at
// each start (127.0.0.1:0): a kept URL then reaches whoever takes the old
// one; nor a fixed port under a system-wide file, which serves one user.
func (c *Config) ListenAdvice() string {
	switch {
	case c != nil && c.Proxy.Listen == ListenAuto:
		return "your address comes from proxy.listen: auto and no other user's agent takes it, so whoever holds it does so on purpose: `ss -ltnp` shows who; tell your administrator"
	case c != nil && c.SystemPath() != "":
		return "a fixed address in a shared host's config serves one user only: ask your administrator to set proxy.listen: auto in " + c.SystemPath() + " (an address of your own, from your uid), or set it in your own config"
	}
	return "set proxy.listen: auto in your config (an address of your own, from your uid, the same at every start)"
}
