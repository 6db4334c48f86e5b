// Command kc-agent is the program users run. It is small on purpose: it
// answers `kc-agent token`, which scripts run in loops, by itself, and hands
// every other command, and every token call it does not fully understand,
// to kc-agent-core, the rest of kc-agent, installed beside it.
//
// Why two programs: every Go program runs the package inits of everything
// it links before main, and kc-agent-core links the daemon (TLS proxy,
// D-Bus keychain, OIDC, YAML, fsnotify): ~1 ms per call before a token
// could be asked for (docs/BENCHMARKS.md, section 6.5). This program links
// the standard library's lightest packages, ipc/discovery and
// internal/bearer, nothing else.
//
// The fast path is an optimisation, never a second implementation of
// behaviour: it makes the same discovery and the same owner and peer checks
// (ipc/discovery), and prints only a plain success. Anything else (an
// option it does not know, an error, no agent yet, an answer it does not
// expect) goes to kc-agent-core with the same arguments, which does it all
// again the one canonical way: messages, hints, exit codes, autostart.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "token" {
		switch out, path, res := fastToken(args[1:]); res {
		case askOK:
			os.Stdout.Write(out)
			os.Exit(0)
		case askTimedOut:
			fmt.Fprintf(os.Stderr, "kc-agent: error: the agent at %s took the request but did not answer within %s\n", path, askTimeout)
			fmt.Fprintln(os.Stderr, "kc-agent: hint: see `kc-agent status` and the agent's log; `kc-agent service restart` (or stopping it) ends a stuck agent")
			os.Exit(1)
		}
	}
	os.Exit(runCore(args))
}
