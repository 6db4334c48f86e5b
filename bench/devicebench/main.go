//go:build unix

// Command devicebench measures how soon a device sign-in notices the
// user's approval: the time from "Yes" on Keycloak's consent page to the
// sign-in completing, at realm device polling intervals of 1 s and 5 s
// (oauth2DevicePollingInterval, on a copy of the test realm). kc-agent's
// poll loop (agent/oidc) runs beside golang.org/x/oauth2's
// DeviceAccessToken, the loop kc-agent used before, in the same run,
// alternating. The approval comes at a random moment, as a person's
// would. Run it through bench/run.sh.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/bench/internal/timing"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

const realm = "kcagent-bench-device"

func main() {
	n1 := flag.Int("n1", 20, "sign-ins per loop at the 1 s interval")
	n5 := flag.Int("n5", 10, "sign-ins per loop at the 5 s interval")
	flag.Parse()
	if err := run(*n1, *n5); err != nil {
		fmt.Fprintln(os.Stderr, "devicebench: error:", err)
		os.Exit(1)
	}
}

// sample is one sign-in: approval to completion, and what the polls got.
type sample struct {
	latency          time.Duration
	polls, slowDowns int64
}

func run(n1, n5 int) error {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "devicebench: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	admin := kc.Admin()
	if err := admin.CopyRealm(ctx, keycloak.RealmTest, realm, nil); err != nil {
		return err
	}
	defer admin.DeleteRealm(context.WithoutCancel(ctx), realm)
	issuer := kc.Issuer(realm)
	fmt.Printf("device sign-in: approval at Keycloak to sign-in complete (Keycloak at %s)\n", kc.BaseURL)
	for _, iv := range []struct{ secs, n int }{{1, n1}, {5, n5}} {
		if err := admin.SetRealm(ctx, realm, map[string]any{"oauth2DevicePollingInterval": iv.secs}); err != nil {
			return err
		}
		var ours, old []sample
		for i := 0; i < iv.n; i++ {
			s, err := round(ctx, issuer, iv.secs, true)
			if err != nil {
				return err
			}
			ours = append(ours, s)
			if s, err = round(ctx, issuer, iv.secs, false); err != nil {
				return err
			}
			old = append(old, s)
		}
		report(time.Duration(iv.secs)*time.Second, ours, old)
	}
	return nil
}

// pollCounter counts the token endpoint's answers to device polls.
type pollCounter struct {
	base             http.RoundTripper
	polls, slowDowns atomic.Int64
}

func (p *pollCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.base.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/token") {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	p.polls.Add(1)
	if bytes.Contains(body, []byte(`"slow_down"`)) {
		p.slowDowns.Add(1)
	}
	return resp, nil
}

type ended struct {
	at      time.Time
	refresh string
	err     error
}

// round runs one device sign-in, approves it at a random moment as alice,
// and times the approval to the end of the wait.
func round(ctx context.Context, issuer string, secs int, ours bool) (sample, error) {
	pc := &pollCounter{base: &http.Transport{Proxy: nil}}
	hc := &http.Client{Transport: pc, Timeout: 30 * time.Second}
	c, err := oidc.New(ctx, issuer, "kc-agent", oidc.Options{})
	if err != nil {
		return sample{}, err
	}
	cc := *c
	cc.HTTP = hc
	done := make(chan ended, 1)
	var uri string
	if ours {
		d, err := cc.StartDevice(ctx, nil)
		if err != nil {
			return sample{}, err
		}
		uri = d.VerificationURIComplete
		go func() {
			res, err := d.Wait(ctx)
			e := ended{at: time.Now(), err: err}
			if err == nil {
				e.refresh = res.Token.RefreshToken
			}
			done <- e
		}()
	} else if uri, err = startOld(ctx, issuer, hc, done); err != nil {
		return sample{}, err
	}
	time.Sleep(rand.N(2 * time.Duration(secs) * time.Second))
	res, err := keycloak.NewFormBrowser("alice", "alice-pw").Visit(ctx, uri)
	approved := time.Now()
	if err != nil || !strings.Contains(res.URL, "/device/status") {
		return sample{}, fmt.Errorf("approval: %v", err)
	}
	e := <-done
	if e.err != nil {
		return sample{}, e.err
	}
	_ = cc.Logout(ctx, e.refresh) // no sessions left behind
	return sample{latency: e.at.Sub(approved), polls: pc.polls.Load(), slowDowns: pc.slowDowns.Load()}, nil
}

// startOld starts a device sign-in polled by x/oauth2's DeviceAccessToken,
// as kc-agent did before its own loop.
func startOld(ctx context.Context, issuer string, hc *http.Client, done chan<- ended) (string, error) {
	var meta struct {
		Token  string `json:"token_endpoint"`
		Device string `json:"device_authorization_endpoint"`
	}
	resp, err := hc.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		return "", err
	}
	cfg := &oauth2.Config{ClientID: "kc-agent", Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{TokenURL: meta.Token, DeviceAuthURL: meta.Device, AuthStyle: oauth2.AuthStyleInParams}}
	octx := context.WithValue(ctx, oauth2.HTTPClient, hc)
	verifier := oauth2.GenerateVerifier()
	da, err := cfg.DeviceAuth(octx, oauth2.S256ChallengeOption(verifier))
	if err != nil {
		return "", err
	}
	go func() {
		tok, err := cfg.DeviceAccessToken(octx, da, oauth2.VerifierOption(verifier))
		e := ended{at: time.Now(), err: err}
		if err == nil {
			e.refresh = tok.RefreshToken
		}
		done <- e
	}()
	return da.VerificationURIComplete, nil
}

func report(interval time.Duration, ours, old []sample) {
	fmt.Printf("\ninterval %s (realm oauth2DevicePollingInterval), %d sign-ins per loop\n", interval, len(ours))
	fmt.Printf("  %-36s %9s %9s %9s %13s %15s\n", "loop", "p50", "p90", "max", "p90/interval", "slow_down/polls")
	line := func(name string, s []sample) time.Duration {
		lat := make([]time.Duration, len(s))
		var polls, slow int64
		for i, x := range s {
			lat[i], polls, slow = x.latency, polls+x.polls, slow+x.slowDowns
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p90 := timing.Pct(lat, 90)
		fmt.Printf("  %-36s %9s %9s %9s %12.2fx %9d/%-5d\n", name, secs(timing.Pct(lat, 50)), secs(p90), secs(timing.Pct(lat, 100)),
			float64(p90)/float64(interval), slow, polls)
		return p90
	}
	p90 := line("kc-agent (agent/oidc poll loop)", ours)
	oldP90 := line("x/oauth2 DeviceAccessToken (before)", old)
	met := "met"
	if p90 > interval+time.Second {
		met = "NOT met"
	}
	fmt.Printf("  before/after p90: %.2fx; goal p90 <= interval + 1 s (%s): %s\n", float64(oldP90)/float64(p90), secs(interval+time.Second), met)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
