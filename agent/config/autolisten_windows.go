package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

// userNumber is what proxy.listen: auto derives the port from: the RID,
// the last part of the user's SID (1000 and up for accounts people use).
func userNumber() (uint32, error) {
	sid, err := winsid.Current()
	if err != nil {
		return 0, err
	}
	rid, err := strconv.ParseUint(sid[strings.LastIndexByte(sid, '-')+1:], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("the SID %s ends in no number: %w", sid, err)
	}
	return uint32(rid), nil
}
