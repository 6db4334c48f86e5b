package ipc

import "github.com/kc-agent/kc-agent/internal/sameuser"

// LoopbackPeer and ListenLoopback live in internal/sameuser (agent/oidc's
// sign-in listener uses them, and the domain does not import the wire).
var (
	LoopbackPeer   = sameuser.LoopbackPeer
	ListenLoopback = sameuser.ListenLoopback
)
