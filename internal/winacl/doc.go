// Package winacl protects kc-agent's files on Windows the way modes do on
// Unix: what the agent writes gets a protected DACL for the user alone,
// and what it reads is checked by owner and ACL (Go reports every writable
// file there as 0666, which says nothing). Only Windows has it.
package winacl
