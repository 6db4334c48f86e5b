package session

import (
	"context"
	"log/slog"
	"sync"

	"github.com/kc-agent/kc-agent/agent/launcher"
	"github.com/kc-agent/kc-agent/ipc"
)

// launchSlot is the service's sign-in launcher, started on first use and
// kept until the service closes: one loopback port for every sign-in's
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

// LaunchLogin answers a one-time launcher link to a pending sign-in's
// page (the authorization URL, or the complete verification URL): the CLI
// and the Python client hand that link, never the page's URL, to a
// browser opener, whose argv every local user can read. The same call as
// ipc.Client's.
func (s *Service) LaunchLogin(ctx context.Context, id string) (string, error) {
	si := s.lookup(id)
	if si == nil {
		return "", errNoSuchSignIn()
	}
	st := si.status(false)
	if st.State != ipc.LoginPending {
		return "", &ipc.Error{Code: ipc.CodeNotFound, Message: "the sign-in has ended (" + st.State + "); there is nothing to open", Hint: "start a new one"}
	}
	target := st.AuthorizationURL
	if st.Flow == ipc.FlowDevice {
		target = st.VerificationURIComplete
		if target == "" {
			target = st.VerificationURI
		}
	}
	l, err := s.launch.get(s.log())
	if err != nil {
		return "", &ipc.Error{Code: ipc.CodeUnavailable, Message: "could not open the sign-in launcher: " + err.Error(), Hint: "open the sign-in link yourself"}
	}
	return l.Link(target, st.ExpiresAt), nil
}
