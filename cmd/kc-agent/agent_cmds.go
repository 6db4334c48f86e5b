package main

import "github.com/spf13/cobra"

func addAgentCommands(root *cobra.Command, streams *IOStreams) {}
