//go:build unix

package ipc

import (
	"context"
	"net"
	"path/filepath"
	"time"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// dialVerified connects to the socket at path after checking its directory
// (ours, 0700), and then checks that the process answering is ours too
// (discovery.CheckPeer).
func dialVerified(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	if err := discovery.CheckSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if err := discovery.CheckPeer(path, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
