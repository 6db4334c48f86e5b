package daemon

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/kc-agent/kc-agent/agent/launcher"
	"github.com/kc-agent/kc-agent/ipc"
)

// launchSlot is the agent's sign-in launcher, started on first use and
// kept until the agent stops: one loopback port for every sign-in's
// one-time links.
type launchSlot struct {
	mu sync.Mutex
	l  *launcher.Launcher
}

func (s *launchSlot) get(log *slog.Logger) (*launcher.Launcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		l, err := launcher.Start(log)
		if err != nil {
			return nil, err
		}
		s.l = l
	}
	return s.l, nil
}

func (s *launchSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil {
		s.l.Close()
		s.l = nil
	}
}

// handleLoginLaunch answers a one-time launcher link to a pending
// sign-in's page (the authorization URL, or the complete verification
// URL): the CLI and the Python client hand that link, never the page's
// URL, to a browser opener, whose argv every local user can read.
func (d *Daemon) handleLoginLaunch(w http.ResponseWriter, r *http.Request) {
	s := d.lookupSignIn(w, r)
	if s == nil {
		return
	}
	st := s.status(false)
	if st.State != ipc.LoginPending {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusNotFound, Code: ipc.CodeNotFound, Message: "the sign-in has ended (" + st.State + "); there is nothing to open",
			Hint: "start a new one"})
		return
	}
	target := st.AuthorizationURL
	if st.Flow == ipc.FlowDevice {
		target = st.VerificationURIComplete
		if target == "" {
			target = st.VerificationURI
		}
	}
	l, err := d.launch.get(d.log)
	if err != nil {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable, Message: "could not open the sign-in launcher: " + err.Error(),
			Hint: "open the sign-in link yourself"})
		return
	}
	ipc.WriteJSON(w, http.StatusOK, ipc.LaunchResponse{URL: l.Link(target, st.ExpiresAt)})
}
