package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/bearer"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// Exit codes, one place for all of them.
const (
	exitOK            = 0
	exitError         = 1
	exitUsage         = 2
	exitUnreachable   = 3
	exitLoginRequired = 4
)

// IOStreams are the command's stdin/stdout/stderr; tests swap them.
type IOStreams struct {
	In    io.Reader
	Out   io.Writer
	Err   io.Writer
	InTTY bool // stdin is a terminal (not /dev/null, a pipe or a file)
}

func systemIO() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, InTTY: term.IsTerminal(int(os.Stdin.Fd()))}
}

// cliError carries an exit code and a hint to the one place that prints.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func withHint(err error, hint string) error {
	return &cliError{code: exitError, err: err, hint: hint}
}

// run is the whole CLI: main calls it, tests call it in-process.
func run(args []string, streams *IOStreams) int {
	ctx, stop := context.Background(), func() {}
	if !isTokenCmd(args) {
		// Commands that wait (login, run, exec) clean up when the context
		// ends. `token` has nothing to clean up, so it dies of the signal
		// the default way: setting up delivery (a goroutine, and a thread
		// parked for it) cost ~0.3 ms of its ~2 ms (docs/BENCHMARKS.md).
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	defer stop()
	root := newRootCmdFor(streams, args)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ce *childExit
	if errors.As(err, &ce) {
		if ce.code < 0 {
			return exitError
		}
		return ce.code
	}
	return report(streams.Err, err)
}

// report prints an error the one way kc-agent prints errors and picks the
// exit code.
func report(w io.Writer, err error) int {
	code, hint := exitError, ""
	var ce *cliError
	if errors.As(err, &ce) {
		code, hint = ce.code, ce.hint
	}
	// Errors that know what the user should do next (no keychain, no agent).
	var h interface{ Hint() string }
	if hint == "" && errors.As(err, &h) {
		hint = h.Hint()
	}
	var ae *ipc.Error
	if errors.As(err, &ae) {
		if hint == "" {
			hint = ae.Hint
		}
		if code == exitError {
			code = exitCodeForIPC(ae)
		}
	}
	if (errors.Is(err, ipc.ErrUnreachable) || errors.Is(err, discovery.ErrUntrusted)) && code == exitError {
		code = exitUnreachable
	}
	// Every error kc-agent prints passes here, whatever it carries (an
	// agent's message, an identity provider's error_description): anything
	// shaped like a JWT is cut out, as the Python client does.
	fmt.Fprintf(w, "kc-agent: error: %s\n", bearer.Scrub(err.Error()))
	if hint != "" {
		fmt.Fprintf(w, "kc-agent: hint: %s\n", bearer.Scrub(hint))
	}
	return code
}

func exitCodeForIPC(e *ipc.Error) int {
	switch e.Code {
	case ipc.CodeLoginRequired, ipc.CodeUnknown:
		return exitLoginRequired
	case ipc.CodeBadRequest:
		return exitUsage
	}
	return exitError
}

// usageArgs makes an argument validator's complaint a usage error (exit 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &cliError{code: exitUsage, err: err, hint: fmt.Sprintf("see `%s --help`", cmd.CommandPath())}
		}
		return nil
	}
}

func newRootCmd(streams *IOStreams) *cobra.Command { return newRootCmdFor(streams, nil) }

// newRootCmdFor builds the command tree that args need. Scripts run
// `kc-agent token` in loops, so for token only its own branch is built
// (no other command's flags and help, no completion commands); everything
// else, help and completion included, gets the whole tree.
func newRootCmdFor(streams *IOStreams, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "kc-agent",
		Short: "Keycloak tokens for scripts and notebooks, without secrets in code",
		Long: `kc-agent logs you in to Keycloak once, keeps an offline token in the OS
keychain, and hands out fresh access tokens to your scripts (kc-agent token)
and notebooks (a localhost proxy that adds Authorization: Bearer).`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cliError{code: exitUsage, err: err, hint: fmt.Sprintf("see `%s --help`", c.CommandPath())}
	})
	if isTokenCmd(args) {
		root.CompletionOptions.DisableDefaultCmd = true
		root.AddCommand(newTokenCmd(streams))
		return root
	}
	// Every command, in the order of `kc-agent --help`.
	root.AddCommand(
		newLoginCmd(streams),
		newLogoutCmd(streams),
		newTokenCmd(streams),
		newStatusCmd(streams),
		newRunCmd(streams),
		newEnvCmd(streams),
		newExecCmd(streams),
		newServiceCmd(streams),
		newStopCmd(streams),
		newDoctorCmd(streams),
		newVersionCmd(streams),
		newKubeCredentialCmd(streams),
		newKubeconfigCmd(streams),
		newGitCredentialCmd(streams),
		newGitCmd(streams),
	)
	// Unknown commands: a usage error (exit 2) with cobra's suggestions.
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		hint := "see `kc-agent --help`"
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = "did you mean `kc-agent " + s[0] + "`?"
		}
		return &cliError{code: exitUsage, err: fmt.Errorf("unknown command %q", args[0]), hint: hint}
	}
	return root
}

// isTokenCmd tells `kc-agent token ...`, the command scripts run in loops,
// which gets a lighter start (see run and newRootCmdFor).
func isTokenCmd(args []string) bool { return len(args) > 0 && args[0] == "token" }

// loadConfig reads the config file, turning validation errors into a
// message that says how to fix them.
func loadConfig() (*config.Config, error) {
	path, err := config.FilePath()
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, withHint(err, "fix the file (or move it away to start over), then try again")
	}
	return cfg, nil
}

func profileFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "profile", "p", "", "profile to use (default $KC_AGENT_PROFILE or \"default\")")
}

func requireProfile(cfg *config.Config, name string) (config.Profile, error) {
	p, ok := cfg.Profile(name)
	if !ok && cfg.SystemError() != nil {
		return p, &cliError{code: exitLoginRequired, err: fmt.Errorf("no profile %q in %s, and the system-wide config is ignored: %w", name, cfg.Path(), cfg.SystemError()),
			hint: "ask the administrator to fix the system-wide config, or run `kc-agent login --profile " + name + " <issuer-url>`"}
	}
	if !ok {
		return p, &cliError{code: exitLoginRequired, err: fmt.Errorf("no profile %q in %s", name, cfg.Path()),
			hint: fmt.Sprintf("run `kc-agent login --profile %s <issuer-url>` first", name)}
	}
	return p, nil
}
