package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/proxy"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ipc.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "version": d.opts.Version, "pid": os.Getpid()})
	})
	mux.HandleFunc("POST "+ipc.PathToken, d.handleToken)
	mux.HandleFunc("POST "+ipc.PathProof, d.handleProof)
	mux.HandleFunc("GET "+ipc.PathStatus, d.handleStatus)
	mux.HandleFunc("POST "+ipc.PathReload, d.handleReload)
	mux.HandleFunc("GET "+ipc.PathProxy, d.handleProxy)
	mux.HandleFunc("POST "+ipc.PathLogin, d.handleLoginStart)
	mux.HandleFunc("GET "+ipc.PathLogin+"/{id}", d.handleLoginGet)
	mux.HandleFunc("DELETE "+ipc.PathLogin+"/{id}", d.handleLoginCancel)
	mux.HandleFunc("GET "+ipc.PathLogin+"/{id}/qr.svg", d.handleLoginQR)
	mux.HandleFunc("POST "+ipc.PathLogout, d.handleLogout)
	mux.HandleFunc("POST "+ipc.PathLogin+"/{id}/launch", d.handleLoginLaunch)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteError(w, &ipc.Error{Code: ipc.CodeNoEndpoint,
			Message: fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func (d *Daemon) handleToken(w http.ResponseWriter, r *http.Request) {
	var req ipc.TokenRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	if e := validateTokenRequest(&req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 40*time.Second)
	defer cancel()
	a, err := d.mgr.Token(ctx, tokens.Request{Profile: req.Profile, Scopes: req.Scopes,
		MinValid: time.Duration(req.MinValid * float64(time.Second)), Force: req.ForceRefresh, ID: req.Type == ipc.TokenTypeID})
	if err != nil {
		ipc.WriteError(w, d.apiError(req.Profile, err))
		return
	}
	now := time.Now()
	resp := ipc.TokenResponse{
		AccessToken: a.Token, TokenType: a.Type,
		ExpiresAt: a.ExpiresAt.UTC().Truncate(time.Second),
		ExpiresIn: int64(a.ExpiresAt.Sub(now) / time.Second),
	}
	if req.Type == ipc.TokenTypeID {
		resp.AccessToken, resp.IDToken = "", a.Token
	}
	ipc.WriteJSON(w, http.StatusOK, resp)
}

func validateTokenRequest(req *ipc.TokenRequest) *ipc.Error {
	bad := func(msg string) *ipc.Error {
		return &ipc.Error{Code: ipc.CodeBadRequest, Message: msg}
	}
	if req.Profile == "" {
		req.Profile = config.DefaultProfile
	}
	if !config.ValidProfileName(req.Profile) {
		return bad(fmt.Sprintf("invalid profile name %q: use 1-64 letters, digits, '.', '_' or '-'", req.Profile))
	}
	switch req.Type {
	case "", ipc.TokenTypeAccess, ipc.TokenTypeID:
	default:
		return bad(fmt.Sprintf("type must be %q or %q", ipc.TokenTypeAccess, ipc.TokenTypeID))
	}
	if req.MinValid < 0 || req.MinValid > ipc.MaxMinValid.Seconds() || req.MinValid != req.MinValid {
		return bad(fmt.Sprintf("min_valid must be between 0 and %d seconds", int(ipc.MaxMinValid.Seconds())))
	}
	if len(req.Scopes) > 32 {
		return bad("too many scopes")
	}
	for _, s := range req.Scopes {
		if s == "" || len(s) > 128 {
			return bad("invalid scope")
		}
		for _, c := range s {
			if c <= ' ' || c == '"' || c == '\\' || c > '~' {
				return bad(fmt.Sprintf("invalid character in scope %q", s))
			}
		}
	}
	return nil
}

func (d *Daemon) apiError(profile string, err error) *ipc.Error {
	var te *tokens.Error
	if !errors.As(err, &te) {
		d.log.Error("token request failed", "profile", profile, "err", err.Error())
		return &ipc.Error{Code: ipc.CodeInternal, Message: err.Error()}
	}
	// The manager's codes go on the wire under the same names.
	code := string(te.Code)
	e := &ipc.Error{Code: code, Message: te.Msg, Hint: te.Hint}
	if te.Code == tokens.CodeUnknownProfile {
		d.mu.Lock()
		if d.configErr != "" {
			e.Message += " (the config file is invalid: " + d.configErr + ")"
			e.Hint = "fix the config file; the agent reloads it by itself"
		}
		d.mu.Unlock()
	}
	return e
}

// proxyStatus describes the proxy; withURL adds the URL carrying the
// proxy secret (for /v1/proxy, never for status).
func (d *Daemon) proxyStatus(withURL bool) ipc.ProxyStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := ipc.ProxyStatus{Routes: []ipc.RouteInfo{}}
	cfg := d.cfg
	if cfg == nil {
		return ps
	}
	ps.Configured = len(cfg.Routes) > 0 || cfg.Proxy != (config.Proxy{})
	if !ps.Configured {
		ps.Hint = "no proxy is configured: add routes (or a proxy: section) to " + d.opts.ConfigPath
		return ps
	}
	ps.Error = d.proxyErr
	if ps.Error == "" && d.configErr != "" {
		ps.Error = d.configErr
	}
	if d.proxy == nil {
		if ps.Error == "" {
			ps.Error = "the proxy is not running"
		}
		ps.Hint = "see `kc-agent doctor`; the agent retries when the config changes or it restarts"
		return ps
	}
	st := d.proxy.Status(withURL)
	for i := range st.Routes {
		st.Routes[i].Source = cfg.RouteSource(st.Routes[i].Name)
	}
	if ps.Error != "" {
		st.Error = ps.Error // a rejected change: the running proxy is the old one
		st.Hint = "the proxy keeps the last good settings; fix the config file"
	}
	return st
}

func (d *Daemon) handleProxy(w http.ResponseWriter, r *http.Request) {
	ipc.WriteJSON(w, http.StatusOK, d.proxyStatus(true))
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	ps := d.proxyStatus(false)
	d.mu.Lock()
	cfgErr, cfg := d.configErr, d.cfg
	d.mu.Unlock()
	profiles := profileStatus(d.mgr.Status())
	sysPath, sysErr, leftOut := "", "", []string(nil)
	if cfg != nil {
		sysPath = cfg.SystemPath()
		for _, err := range cfg.LeftOut() {
			leftOut = append(leftOut, err.Error())
		}
		if err := cfg.SystemError(); err != nil {
			sysErr = err.Error()
		}
		for i := range profiles {
			profiles[i].Source = cfg.ProfileSource(profiles[i].Name)
		}
	}
	ipc.WriteJSON(w, http.StatusOK, ipc.StatusResponse{
		Version:      d.opts.Version,
		PID:          os.Getpid(),
		StartedAt:    d.started.UTC().Truncate(time.Second),
		Uptime:       time.Since(d.started).Round(time.Second).String(),
		Socket:       d.opts.SocketPath,
		ConfigPath:   d.opts.ConfigPath,
		ConfigError:  cfgErr,
		SystemConfig: sysPath,
		Lock:         d.opts.LockPath,
		Autostarted:  d.opts.Autostarted,
		IdleExit:     idleText(d.idleLimit()),
		UID:          os.Getuid(),
		SID:          discovery.UserSID(),
		Proxy:        ps,
		Profiles:     profiles,
		SignIns:      d.logins.SignIns(),

		// What of the system-wide file is not in force, and why.
		SystemConfigError: sysErr,
		LeftOutRoutes:     leftOut,
	})
}

func (d *Daemon) handleReload(w http.ResponseWriter, r *http.Request) {
	var req ipc.ReloadRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	// login may have added the profile to the config a moment ago.
	if err := d.loadConfig(); err != nil {
		d.log.Warn("reload: config is invalid; the last good config stays live", "err", err.Error())
	}
	if err := d.mgr.Reload(req.Profile); err != nil {
		ipc.WriteError(w, d.apiError(req.Profile, err))
		return
	}
	d.log.Info("reloaded", "profile", req.Profile)
	ipc.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// profileStatus puts the manager's view of each profile on the wire.
func profileStatus(in []tokens.ProfileStatus) []ipc.ProfileStatus {
	out := make([]ipc.ProfileStatus, 0, len(in))
	for _, p := range in {
		out = append(out, ipc.ProfileStatus{
			Name: p.Name, State: string(p.State), User: p.User, Issuer: p.Issuer, ClientID: p.ClientID, Store: p.Store,
			AccessExpiresAt: timePtr(p.AccessExpiresAt), LastRefresh: timePtr(p.LastRefresh),
			NextRefresh: timePtr(p.NextRefresh), LastUsed: timePtr(p.LastUsed),
			Refreshes: p.Refreshes, LastError: p.LastError, Hint: p.Hint, PersistPending: p.PersistPending,
			Warnings: p.Warnings, ForeignListeners: proxy.WireListeners(p.ForeignListeners),
		})
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
