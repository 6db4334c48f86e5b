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
	"reflect"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/proxy"
	"github.com/kc-agent/kc-agent/agent/session"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
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
	// LockPath, when set, is the one-agent lock (discovery.LockPath) the agent
	// holds while it runs: a second agent for the same user refuses.
	LockPath string
	// SocketCheckEvery is how often the agent makes sure its socket is
	// still there (default 2 s).
	SocketCheckEvery time.Duration
	// Autostarted: a client started this agent (`kc-agent run
	// --autostarted`) and nothing else manages it, so it ends after
	// IdleExit without clients (the config's agent.idle_exit wins; 0 is
	// never) and the next client starts it again.
	Autostarted bool
	IdleExit    time.Duration
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

	logins *session.Service
	active *activity
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	harden()
	log := opts.Log
	d := &Daemon{opts: opts, log: log, started: time.Now(), active: newActivity()}
	d.mgr = opts.Manager
	if d.mgr == nil {
		d.mgr = tokens.NewManager(log)
	}
	d.logins = d.newSessions()
	defer d.mgr.Close()
	defer d.stopProxy()
	defer d.logins.Close() // before the manager closes: a sign-in may be storing

	// The lock and the socket first: a second agent must stop here, before
	// it starts a proxy or touches a token.
	var lock *ipc.Lock
	if opts.LockPath != "" {
		var err error
		if lock, err = ipc.WaitLock(opts.LockPath, "agent", opts.SocketPath, 10*time.Second); err != nil {
			return err
		}
		defer lock.Release()
	}
	ln, err := ipc.Listen(opts.SocketPath, log)
	if err != nil {
		return err
	}
	// The socket as created, before anyone can be told it is there. A
	// Windows pipe is not a file (a stat would connect to it), and its name
	// lives as long as the listener: there is nothing to watch.
	var sockFile os.FileInfo
	if !discovery.IsPipe(opts.SocketPath) {
		sockFile, _ = os.Lstat(opts.SocketPath)
	}
	if err := d.loadConfig(); err != nil {
		log.Error("config is invalid; serving no profiles until it is fixed", "err", err.Error())
	}
	srv := ipc.NewServer(d.active.wrap(d.routes()))
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
	gone := d.watchSocket(ctx, sockFile)
	idle := watchIdle(ctx, d.active, d.idleLimit, d.signInPending)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		ipc.Shutdown(srv)
		return nil
	case <-idle:
		log.Info("shutting down: no clients for the idle time (agent.idle_exit); the next client starts the agent again", "idle_exit", d.idleLimit().String())
		d.stepDown(srv, lock)
		return nil
	case err := <-gone:
		log.Warn("shutting down: clients can no longer find this agent, and a new one may start", "err", err.Error())
		ipc.Shutdown(srv)
		return err
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// watchSocket reports when the agent's socket file is removed or replaced
// (logind deletes /run/user/<uid> at the last logout, say). Clients can no
// longer find this agent then, and would start another on the same stored
// login, so this one steps down rather than refresh alongside it.
func (d *Daemon) watchSocket(ctx context.Context, first os.FileInfo) <-chan error {
	gone := make(chan error, 1)
	if first == nil {
		return gone
	}
	go func() {
		every := d.opts.SocketCheckEvery
		if every <= 0 {
			every = 2 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := os.Lstat(d.opts.SocketPath)
			if err != nil || !os.SameFile(first, now) {
				gone <- fmt.Errorf("the socket %s was removed or replaced", d.opts.SocketPath)
				return
			}
		}
	}()
	return gone
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
	if err := cfg.SystemError(); err != nil && (old == nil || old.SystemError() == nil || old.SystemError().Error() != err.Error()) {
		d.log.Warn("the system-wide config is ignored; the user's own profiles keep serving", "err", err.Error())
	}
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
	p, err := proxy.New(proxy.Options{Config: cfg, Tokens: d.mgr, StateDir: d.opts.StateDir, Log: d.log.With("component", "proxy"),
		Activity: d.active.begin})
	if err == nil {
		// A taken address is waited for in the background (the proxy
		// says so in status): nobody restarts a notebook user's agent.
		err = p.StartRetrying()
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
