//go:build unix

package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSSKB is a process's resident set size in KiB, from /proc (-1 if unknown).
func RSSKB(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			if f := strings.Fields(l); len(f) > 1 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return -1
}
