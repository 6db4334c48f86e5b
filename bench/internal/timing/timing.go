// Package timing is what the benchmark programs share: timing a call n
// times, percentiles, and printing durations.
package timing

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Times runs f n times and returns the durations of the calls that
// succeeded, sorted; failures are reported on stderr under name.
func Times(name string, n int, f func() error) []time.Duration {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: call failed: %v\n", name, err)
			continue
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Pct is the p-th percentile of sorted durations (0 when there are none).
func Pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[(len(d)-1)*p/100]
}

// Ms prints a duration in milliseconds with two decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
