//go:build unix

package proxy

import (
	"net/http"
	"testing"

	"github.com/kc-agent/kc-agent/agent/dpop/tpmkey"
	"github.com/kc-agent/kc-agent/internal/testenv/swtpm"
)

// BenchmarkDPoPRouteTPM is BenchmarkDPoPRouteRatio's first case with the
// login's key in a TPM (swtpm): every proof is signed in the TPM.
func BenchmarkDPoPRouteTPM(b *testing.B) {
	tpm := swtpm.Start(b)
	key, err := tpmkey.Device(tpm.Device).Generate()
	if err != nil {
		b.Fatal(err)
	}
	base, stop := dpopBenchProxyKey(b, 0, key)
	defer stop()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const rounds, n, conc = 3, 400, 8
	var on, off []float64
	for i := 0; i < b.N; i++ {
		on, off = on[:0], off[:0]
		for range rounds {
			for _, mode := range []string{"off", "on"} {
				r, err := rps(c, base+"/"+mode+"/x", n, conc)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "on" {
					on = append(on, r)
				} else {
					off = append(off, r)
				}
			}
		}
	}
	mOn, mOff := median(on), median(off)
	b.ReportMetric(mOff, "off-req/s")
	b.ReportMetric(mOn, "on-req/s")
	b.ReportMetric(mOn/mOff, "on/off")
	b.Logf("TPM key (swtpm): dpop off %.0f req/s, on %.0f req/s (%.1f ms a request), on/off %.3f", mOff, mOn, 1000*conc/mOn, mOn/mOff)
}
