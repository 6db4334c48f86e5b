package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func newExecCmd(streams *IOStreams) *cobra.Command {
	var noAutostart bool
	cmd := &cobra.Command{
		Use:   "exec -- COMMAND [ARGS...]",
		Short: "Run a command with the proxy variables set (starting the agent if needed)",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, note, err := proxyEnv(cmd.Context(), streams.Err, noAutostart)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintf(streams.Err, "kc-agent: %s\n", note)
			}
			child := exec.Command(args[0], args[1:]...)
			child.Stdin, child.Stdout, child.Stderr = streams.In, streams.Out, streams.Err
			child.Env = os.Environ()
			for _, kv := range vars {
				child.Env = append(child.Env, kv[0]+"="+kv[1])
			}
			if err := child.Start(); err != nil {
				return withHint(fmt.Errorf("can not run %s: %w", args[0], err), "check the command name and PATH")
			}
			err = waitForwardingSignals(child)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &childExit{code: ee.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noAutostart, "no-autostart", false, "do not start an agent")
	return cmd
}

// childExit passes a child's exit status through without a message.
type childExit struct{ code int }

func (e *childExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// waitForwardingSignals waits for child, passing on the interrupts this
// process gets meanwhile; the forwarding ends with the child.
func waitForwardingSignals(child *exec.Cmd) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done, forwarderDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(forwarderDone)
		for {
			select {
			case s := <-sigs:
				child.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := child.Wait()
	signal.Stop(sigs)
	close(done)
	<-forwarderDone
	return err
}
