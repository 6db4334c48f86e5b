package launcher

import "github.com/kc-agent/kc-agent/internal/testenv/wineowner"

// Under Wine, the owners of the tests' own loopback connections come from
// Linux (Wine 8 names none), so the launcher's owner check these tests go
// through runs.
func init() { wineowner.UseLinuxOwnersUnderWine() }
