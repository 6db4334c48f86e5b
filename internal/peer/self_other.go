//go:build !windows

package peer

import "os"

func isSelf(o Owner) bool      { return o.SID == "" && o.UID >= 0 && o.UID == os.Getuid() }
func isSuperuser(o Owner) bool { return o.SID == "" && o.UID == 0 }
func describeSID(sid string) string {
	return "user " + sid
}
