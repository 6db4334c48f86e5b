// Command kc-agent-core is all of kc-agent but the token fast path: every
// command, the agent (`run`), the proxy and the helpers. Users run kc-agent
// (cmd/kc-agent), a small front installed beside this program that answers
// plain `kc-agent token` calls itself and hands everything else here with
// the same arguments. Run directly, it behaves the same.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemIO()))
}
