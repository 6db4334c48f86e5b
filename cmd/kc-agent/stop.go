package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/installers"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

func newStopCmd(streams *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop this user's agent (an installed service through its manager)",
		Long: `Stop this user's agent, wherever it came from: an agent a client autostarted,
one started with ` + "`kc-agent run`" + `, or the installed service (stopped through the
service manager, like ` + "`kc-agent service stop`" + `). The next ` + "`kc-agent token`" + ` or
get_token() starts it again from the stored login; nothing is logged out.
Only a process of this user that runs ` + "`kc-agent run`" + ` is ever stopped.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return stopAgent(cmd.Context(), streams.Err)
		},
	}
}

// stopWait bounds how long stop waits for the agent to exit.
const stopWait = 10 * time.Second

// stopAgent stops this user's agent: the one the verified socket answers
// for (its status names its pid), else the holder of the one-agent lock.
// No agent running is not an error.
func stopAgent(ctx context.Context, stderr io.Writer) error {
	pid, autostarted := 0, false
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if c := ipc.FindRunning(qctx); c != nil {
		if st, err := c.Status(qctx); err == nil {
			pid, autostarted = st.PID, st.Autostarted
		}
	}
	cancel()
	lock, err := discovery.LockPath()
	if err != nil {
		return err
	}
	if pid <= 0 {
		pid = lockHolderPID(lock)
	}
	if pid <= 0 {
		fmt.Fprintln(stderr, "kc-agent: no agent runs for this user")
		return nil
	}
	if !autostarted {
		if stopped, err := stopThroughService(stderr); stopped || err != nil {
			return err
		}
	}
	if err := checkOwnAgent(pid); err != nil {
		return withHint(err, "the one-agent lock "+lock+" names it; `kc-agent status` shows the agent this user's clients reach")
	}
	if err := terminate(pid); err != nil {
		return fmt.Errorf("stopping the agent (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(stopWait)
	for processRuns(pid) {
		if time.Now().After(deadline) {
			return withHint(fmt.Errorf("the agent (pid %d) did not exit within %s", pid, stopWait), "see its log (`kc-agent doctor` says where); kill -9 it if it hangs: the stored login is safe")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintf(stderr, "kc-agent: stopped the agent (pid %d); the next client starts it again\n", pid)
	return nil
}

// lockHolderPID is the pid the one-agent lock names while an agent (or
// one shutting down) holds it; 0 when nobody holds it.
func lockHolderPID(path string) int {
	h := ipc.ReadLockHolder(path)
	if h.PID <= 0 || (h.Role != "agent" && h.Role != "stopping") {
		return 0
	}
	// The file names the last holder; only a held lock means it runs.
	l, err := ipc.TryLock(path, "stop", "")
	if err == nil {
		l.Release()
		return 0
	}
	var le *ipc.LockedError
	if errors.As(err, &le) && (le.Holder.Role == "agent" || le.Holder.Role == "stopping") {
		return le.Holder.PID
	}
	return 0
}

// stopThroughService stops the agent through the per-user service manager
// when the installed service is what runs it: a signal would look like a
// crash to systemd (or be undone by launchd's KeepAlive). Windows' Run key
// starts the agent at logon but manages nothing: there it is stopped by
// its pid like any other.
func stopThroughService(stderr io.Writer) (bool, error) {
	if runtime.GOOS == "windows" || !installers.UserManagerRuns() {
		return false, nil
	}
	p, err := serviceParams("")
	if err != nil {
		return false, nil
	}
	m, err := installers.New(p)
	if err != nil {
		return false, nil
	}
	st, err := m.Status()
	if err != nil || !st.Installed || !st.Running {
		return false, nil
	}
	if err := m.Stop(); err != nil {
		return true, fmt.Errorf("the agent runs as the installed service; stopping it through the service manager failed: %w", err)
	}
	fmt.Fprintln(stderr, "kc-agent: the agent ran as the installed service; stopped it through the service manager (`kc-agent service start` starts it again)")
	return true, nil
}
