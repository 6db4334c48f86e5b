package daemon

import (
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kc-agent/kc-agent/agent/config"
)

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
	watched := map[string]bool{d.opts.ConfigPath: true}
	// The administrator's file too, when its directory exists.
	if sys := config.SystemFilePath(); filepath.Dir(sys) != dir && w.Add(filepath.Dir(sys)) == nil {
		watched[sys] = true
	}
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
				if !watched[filepath.Clean(ev.Name)] {
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
