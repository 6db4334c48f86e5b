package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the release build (-ldflags "-X main.version=... -X main.commit=...").
var (
	version = "dev"
	commit  = ""
)

func versionString() string {
	v, c := version, commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	if c != "" {
		v += " (" + c + ")"
	}
	return fmt.Sprintf("kc-agent %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(streams *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  usageArgs(cobra.NoArgs),
		Run:   func(cmd *cobra.Command, args []string) { fmt.Fprintln(streams.Out, versionString()) },
	}
}
