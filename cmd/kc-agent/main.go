// Command kc-agent is the whole of kc-agent in one program: every command,
// the agent (`kc-agent run`), the proxy and the helpers.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemIO()))
}
