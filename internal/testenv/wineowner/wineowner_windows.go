package wineowner

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

// UseLinuxOwnersUnderWine lets a Windows test binary under Wine learn who
// owns the sockets Wine 8 attributes to no process (every listening and
// accepted socket, the test's own httptest servers included), so that tests
// of the loopback cleartext check run under Wine instead of being listed as
// known failures. It asks what Windows itself would be asked on a real
// machine, "whose socket is this?", of the only place Wine leaves the
// answer: the Linux socket tables (Z:\proc\net\tcp), whose uid it maps to
// this user (the same Linux uid), SYSTEM (root) or another account. Call it
// from TestMain or an init in a _windows_test.go file; outside Wine it does
// nothing, so Windows answers as usual.
func UseLinuxOwnersUnderWine() {
	if !testenv.UnderWine() {
		return
	}
	peer.Unattributed = linuxOwner
}

// otherAccount is the SID given to a socket of another Linux user: an
// account of a made-up domain, which is neither this user nor SYSTEM.
const otherAccount = "S-1-5-21-1-2-3-"

func linuxOwner(local, remote *net.TCPAddr) (peer.Owner, error) {
	uid, err := peer.LinuxUID(`Z:\proc`, local, remote)
	if err != nil {
		return peer.Owner{UID: -1}, fmt.Errorf("under Wine, Linux's socket tables: %w", err)
	}
	me, err := linuxUID()
	if err != nil {
		return peer.Owner{UID: -1}, fmt.Errorf("%w: %v", peer.ErrNoOwner, err)
	}
	switch uid {
	case me:
		sid, err := winsid.Current()
		if err != nil {
			return peer.Owner{UID: -1}, fmt.Errorf("%w: %v", peer.ErrNoOwner, err)
		}
		return peer.Owner{UID: -1, SID: sid}, nil
	case 0:
		return peer.Owner{UID: -1, SID: winsid.System}, nil
	}
	return peer.Owner{UID: -1, SID: otherAccount + strconv.Itoa(uid)}, nil
}

// linuxUID is the Linux uid this Wine process runs as.
func linuxUID() (int, error) {
	f, err := os.Open(`Z:\proc\self\status`)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				return strconv.Atoi(fields[0])
			}
		}
	}
	return -1, fmt.Errorf("no Uid line in /proc/self/status")
}
