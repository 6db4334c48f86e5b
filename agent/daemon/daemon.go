// Package daemon is `kc-agent run`: the socket API, the token manager and
// the config watcher, wired together.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/proxy"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// Options configure a daemon.
type Options struct {
	Version    string
	ConfigPath string
	SocketPath string
	Log        *slog.Logger
	// Ready, when set, is closed once the socket accepts connections.
	Ready chan<- struct{}
	// Manager, when set, replaces the real token manager (tests).
	Manager *tokens.Manager
	// StateDir holds the proxy secret and the local CA.
	StateDir string
	// LockPath, when set, is the one-agent lock (ipc.LockPath) the agent
	// holds while it runs: a second agent for the same user refuses.
	LockPath string
}

// Daemon is a running agent.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	mgr     *tokens.Manager
	started time.Time

	mu        sync.Mutex
	cfg       *config.Config
	configErr string
	proxy     *proxy.Proxy
	proxyErr  string
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	harden()
	log := opts.Log
	d := &Daemon{opts: opts, log: log, started: time.Now()}
	d.mgr = opts.Manager
	if d.mgr == nil {
		d.mgr = tokens.NewManager(log)
	}
	defer d.mgr.Close()
	defer d.stopProxy()

	// The lock and the socket first: a second agent must stop here, before
	// it starts a proxy or touches a token.
	if opts.LockPath != "" {
		lock, err := ipc.WaitLock(opts.LockPath, "agent", opts.SocketPath, 10*time.Second)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	ln, err := ipc.Listen(opts.SocketPath, log)
	if err != nil {
		return err
	}
	if err := d.loadConfig(); err != nil {
		log.Error("config is invalid; serving no profiles until it is fixed", "err", err.Error())
	}
	srv := ipc.NewServer(d.routes())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("kc-agent started", "version", opts.Version, "socket", opts.SocketPath, "config", opts.ConfigPath, "pid", os.Getpid())
	if opts.Ready != nil {
		close(opts.Ready)
	}

	stopWatch, err := d.watchConfig()
	if err != nil {
		log.Warn("not watching the config for changes", "err", err.Error())
	} else {
		defer stopWatch()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		ipc.Shutdown(srv)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func (d *Daemon) loadConfig() error {
	cfg, err := config.Load(d.opts.ConfigPath)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.configErr = err.Error()
		if d.cfg == nil {
			d.cfg = &config.Config{Profiles: map[string]config.Profile{}}
			d.mgr.SetConfig(d.cfg)
		}
		return err
	}
	old := d.cfg
	if old == nil || !reflect.DeepEqual(old.Routes, cfg.Routes) || old.Proxy != cfg.Proxy || d.proxy == nil {
		if err := d.applyProxyLocked(cfg); err != nil && d.proxy != nil {
			// The running proxy keeps the last good settings, and the
			// last good config stays live with it.
			d.configErr = err.Error()
			return err
		}
	}
	d.configErr = ""
	d.cfg = cfg
	d.mgr.SetConfig(cfg)
	return nil
}

// applyProxyLocked brings the proxy in line with cfg: started, changed in
// place (new listeners open before old ones close), or stopped when cfg
// has no routes and no proxy settings. On error a running proxy is left
// as it was; with none running, the error is kept for status.
func (d *Daemon) applyProxyLocked(cfg *config.Config) error {
	if len(cfg.Routes) == 0 && cfg.Proxy == (config.Proxy{}) {
		if d.proxy != nil {
			d.proxy.Close()
			d.proxy = nil
		}
		d.proxyErr = ""
		return nil
	}
	if d.proxy != nil {
		if err := d.proxy.Reconfigure(cfg); err != nil {
			d.log.Error("proxy change rejected; the proxy keeps its last good settings", "err", err.Error())
			return err
		}
		d.proxyErr = ""
		return nil
	}
	p, err := proxy.New(proxy.Options{Config: cfg, Tokens: d.mgr, StateDir: d.opts.StateDir, Log: d.log.With("component", "proxy")})
	if err == nil {
		err = p.Start()
	}
	if err != nil {
		d.proxyErr = err.Error()
		d.log.Error("proxy not running", "err", err.Error())
		return err
	}
	d.proxy, d.proxyErr = p, ""
	return nil
}

func (d *Daemon) stopProxy() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proxy != nil {
		d.proxy.Close()
		d.proxy = nil
	}
}

// watchConfig reloads the config when its directory changes. Editors
// replace files rather than write them, so the directory is watched, and
// bursts of events are debounced.
func (d *Daemon) watchConfig() (func(), error) {
	dir := filepath.Dir(d.opts.ConfigPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	base := filepath.Base(d.opts.ConfigPath)
	done := make(chan struct{})
	go func() {
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			select {
			case <-done:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) != base {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(250*time.Millisecond, func() {
					if err := d.loadConfig(); err != nil {
						d.log.Error("config change rejected; the last good config stays live", "err", err.Error())
					} else {
						d.log.Info("config reloaded", "path", d.opts.ConfigPath)
					}
				})
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("config watcher", "err", err.Error())
			}
		}
	}()
	return func() { close(done); w.Close() }, nil
}

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ipc.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "version": d.opts.Version, "pid": os.Getpid()})
	})
	mux.HandleFunc("POST "+ipc.PathToken, d.handleToken)
	mux.HandleFunc("GET "+ipc.PathStatus, d.handleStatus)
	mux.HandleFunc("POST "+ipc.PathReload, d.handleReload)
	mux.HandleFunc("GET "+ipc.PathProxy, d.handleProxy)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusNotFound, Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// MaxMinValid bounds min_valid: no access token lives a day.
const MaxMinValid = 24 * time.Hour

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
		return &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: msg}
	}
	if req.Profile == "" {
		req.Profile = config.DefaultProfile
	}
	if len(req.Profile) > 64 {
		return bad("profile name too long")
	}
	switch req.Type {
	case "", ipc.TokenTypeAccess, ipc.TokenTypeID:
	default:
		return bad(fmt.Sprintf("type must be %q or %q", ipc.TokenTypeAccess, ipc.TokenTypeID))
	}
	if req.MinValid < 0 || req.MinValid > MaxMinValid.Seconds() || req.MinValid != req.MinValid {
		return bad(fmt.Sprintf("min_valid must be between 0 and %d seconds", int(MaxMinValid.Seconds())))
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
		return &ipc.Error{Status: ipc.HTTPStatus(ipc.CodeInternal), Code: ipc.CodeInternal, Message: err.Error()}
	}
	e := &ipc.Error{Code: te.Code, Message: te.Msg, Hint: te.Hint, Status: ipc.HTTPStatus(te.Code)}
	if te.Code == ipc.CodeUnknown {
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
	cfgErr := d.configErr
	d.mu.Unlock()
	ipc.WriteJSON(w, http.StatusOK, ipc.StatusResponse{
		Version:     d.opts.Version,
		PID:         os.Getpid(),
		StartedAt:   d.started.UTC().Truncate(time.Second),
		Uptime:      time.Since(d.started).Round(time.Second).String(),
		Socket:      d.opts.SocketPath,
		ConfigPath:  d.opts.ConfigPath,
		ConfigError: cfgErr,
		Lock:        d.opts.LockPath,
		UID:         os.Getuid(),
		Proxy:       ps,
		Profiles:    d.mgr.Status(),
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
