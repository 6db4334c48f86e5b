package session

import "github.com/kc-agent/kc-agent/internal/testenv/wineowner"

// Under Wine, the owners of the tests' own loopback servers come from Linux
// (Wine 8 names none), so the cleartext checks these tests go through run.
func init() { wineowner.UseLinuxOwnersUnderWine() }
