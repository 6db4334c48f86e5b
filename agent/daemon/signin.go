package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/session"
	"github.com/kc-agent/kc-agent/ipc"
)

// The sign-ins and logouts the agent runs for its clients are
// agent/session's; these handlers decode, call and encode.

// SignInLimits shape the sign-ins the agent runs (session.Limits).
type SignInLimits = session.Limits

// DefaultSignInLimits are the limits a real agent runs with.
var DefaultSignInLimits = session.DefaultLimits

// SetSignInLimits changes the limits of a running agent (tests) and returns
// a function that puts the old ones back.
func SetSignInLimits(l SignInLimits) (restore func()) { return session.SetLimits(l) }

func (d *Daemon) newSessions() *session.Service {
	return session.New(d.sessionProfile, d.mgr, d.log)
}

// sessionProfile is a profile of the agent's config, with the file it
// comes from.
func (d *Daemon) sessionProfile(name string) (session.Profile, error) {
	p, err := d.mgr.ProfileConfig(name)
	if err != nil {
		return session.Profile{}, d.unknownProfile(name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sp := session.Profile{Config: p, Source: d.opts.ConfigPath}
	if d.cfg != nil {
		sp.Source = d.cfg.ProfileSource(name)
		sp.System = sp.Source != "" && sp.Source == d.cfg.SystemPath()
	}
	return sp, nil
}

// wireError is err as the socket API sends it.
func (d *Daemon) wireError(profile string, err error) *ipc.Error {
	var e *ipc.Error
	if errors.As(err, &e) {
		return e
	}
	return d.apiError(profile, err)
}

func (d *Daemon) handleLoginStart(w http.ResponseWriter, r *http.Request) {
	var req ipc.LoginRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	st, err := d.logins.StartLogin(r.Context(), req)
	if err != nil {
		if r.Context().Err() == nil {
			ipc.WriteError(w, d.wireError(req.Profile, err))
		}
		return
	}
	ipc.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) handleLoginGet(w http.ResponseWriter, r *http.Request) {
	var wait time.Duration
	if ws := r.URL.Query().Get("wait"); ws != "" {
		var err error
		if wait, err = time.ParseDuration(ws); err != nil {
			secs, serr := strconv.ParseFloat(ws, 64)
			if serr != nil || secs != secs {
				ipc.WriteError(w, &ipc.Error{Code: ipc.CodeBadRequest, Message: "wait must be a duration like 30s"})
				return
			}
			wait = time.Duration(secs * float64(time.Second))
		}
	}
	st, err := d.logins.LoginStatus(r.Context(), r.PathValue("id"), wait)
	if err != nil {
		ipc.WriteError(w, d.wireError("", err))
		return
	}
	ipc.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) handleLoginCancel(w http.ResponseWriter, r *http.Request) {
	if err := d.logins.CancelLogin(r.Context(), r.PathValue("id")); err != nil {
		ipc.WriteError(w, d.wireError("", err))
		return
	}
	st, err := d.logins.SignIn(r.PathValue("id"), false)
	if err != nil {
		ipc.WriteError(w, d.wireError("", err))
		return
	}
	ipc.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) handleLoginQR(w http.ResponseWriter, r *http.Request) {
	st, err := d.logins.SignIn(r.PathValue("id"), true)
	if err != nil {
		ipc.WriteError(w, d.wireError("", err))
		return
	}
	if st.QRSVG == "" {
		ipc.WriteError(w, &ipc.Error{Code: ipc.CodeNotFound, Message: "this sign-in has no QR code (browser flow)"})
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(st.QRSVG))
}

func (d *Daemon) handleLoginLaunch(w http.ResponseWriter, r *http.Request) {
	link, err := d.logins.LaunchLogin(r.Context(), r.PathValue("id"))
	if err != nil {
		ipc.WriteError(w, d.wireError("", err))
		return
	}
	ipc.WriteJSON(w, http.StatusOK, ipc.LaunchResponse{URL: link})
}

func (d *Daemon) handleLogout(w http.ResponseWriter, r *http.Request) {
	var req ipc.LogoutRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	out, err := d.logins.Logout(r.Context(), req)
	if err != nil {
		ipc.WriteError(w, d.wireError(req.Profile, err))
		return
	}
	ipc.WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) unknownProfile(name string, err error) *ipc.Error {
	e := d.apiError(name, err)
	if e.Code != ipc.CodeUnknown {
		return e
	}
	d.mu.Lock()
	if d.configErr != "" {
		d.mu.Unlock()
		return e // apiError says the config is invalid, and what to do
	}
	files := d.opts.ConfigPath
	if d.cfg != nil && d.cfg.SystemPath() != "" {
		files += " or the system-wide " + d.cfg.SystemPath()
	} else {
		files += " (no system-wide " + config.SystemFilePath() + ")"
	}
	d.mu.Unlock()
	e.Message = fmt.Sprintf("no profile %q in the config: not in %s", name, files)
	if e.Hint == "" || strings.HasPrefix(e.Hint, "run `kc-agent login") {
		e.Hint = fmt.Sprintf("ask your administrator to add profile %q to the system-wide config, or run `kc-agent login --profile %s <issuer-url>` once in a terminal", name, name)
	}
	return e
}
