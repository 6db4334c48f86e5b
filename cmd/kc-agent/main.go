// Command kc-agent keeps Keycloak tokens fresh for scripts and notebooks.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemIO()))
}
