package peer

import "github.com/kc-agent/kc-agent/internal/winsid"

func isSelf(o Owner) bool {
	me, err := winsid.Current()
	return err == nil && o.SID != "" && o.SID == me
}

func isSuperuser(o Owner) bool { return o.SID == winsid.System }

func describeSID(sid string) string {
	if name := winsid.Name(sid); name != sid {
		return "user " + name + " (" + sid + ")"
	}
	return "user " + sid
}
