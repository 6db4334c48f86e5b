package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/session"
	"github.com/kc-agent/kc-agent/ipc"
)

// flow is the sign-in flow the flags and the machine ask for: the browser,
// or the device flow when asked for or when there is no browser here.
func (opts *loginOptions) flow() string {
	if opts.device {
		return ipc.FlowDevice
	}
	if !opts.noBrowser && !browserAvailable() {
		fmt.Fprintln(opts.io.Err, "kc-agent: no browser available here (no display, or SSH without $BROWSER): using the device flow")
		return ipc.FlowDevice
	}
	return ipc.FlowBrowser
}

// terminal presents a sign-in in the terminal, whoever runs it (the agent
// or this command): the link, the code and the QR code, and a line that
// counts down.
type terminal struct {
	opts *loginOptions
	last string
}

func (opts *loginOptions) presenter() session.Presenter { return &terminal{opts: opts} }

func (t *terminal) openURL(u string) error {
	if openURLHook != nil {
		return openURLHook(u)
	}
	return openBrowser(u)
}

// Show shows the sign-in; a browser opener gets a one-time launcher link
// (launch), never the sign-in's URL, which holds its state, PKCE challenge
// or user code and would be on the opener's argv for every local user.
func (t *terminal) Show(st *ipc.LoginStatus, launch func() (string, error)) {
	open := func() error {
		link, err := launch()
		if err != nil {
			return err
		}
		return t.openURL(link)
	}
	w := t.opts.io.Err
	if st.Joined {
		fmt.Fprintf(w, "kc-agent: a sign-in for profile %q is already running; joining it\n", st.Profile)
	}
	if st.Flow == ipc.FlowDevice {
		showDeviceCode(w, st.VerificationURI, st.UserCode, st.VerificationURIComplete)
		if (browserAvailable() || openURLHook != nil) && st.VerificationURIComplete != "" {
			_ = open()
		}
		return
	}
	switch {
	case t.opts.noBrowser:
		fmt.Fprintf(w, "kc-agent: open this URL in a browser on this machine to sign in:\n\n  %s\n\n", st.AuthorizationURL)
	case open() != nil:
		fmt.Fprintf(w, "kc-agent: could not open a browser; open this URL yourself:\n\n  %s\n\n", st.AuthorizationURL)
	default:
		fmt.Fprintf(w, "kc-agent: opened your browser to sign in; if it did not appear, open:\n\n  %s\n\n", st.AuthorizationURL)
	}
}

// Waiting counts down a browser sign-in in place; the device flow's
// instructions already said it waits (showDeviceCode).
func (t *terminal) Waiting(st *ipc.LoginStatus, left time.Duration) {
	if st.Flow == ipc.FlowDevice {
		return
	}
	t.Stop()
	t.last = fmt.Sprintf("kc-agent: waiting for the browser login (%s left, Ctrl-C to cancel)", max(left, 0).Round(time.Second))
	fmt.Fprint(t.opts.io.Err, "\r"+t.last)
}

func (t *terminal) Stop() {
	if t.last != "" {
		fmt.Fprint(t.opts.io.Err, "\r"+strings.Repeat(" ", len(t.last))+"\r")
		t.last = ""
	}
}
