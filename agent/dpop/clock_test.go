package dpop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// skewedProvider is a token endpoint whose clock is skew off the local
// one. It checks iat as Keycloak does (from 25 s before its time to 15 s
// after) and answers a good proof with a JWT access token issued (iat)
// by its clock. date: it sends its time in a Date header (a reverse
// proxy in front of Keycloak does; Keycloak alone does not).
type skewedProvider struct {
	skew time.Duration
	date bool
	// refuseAll refuses every proof, whatever its iat.
	refuseAll bool

	mu   sync.Mutex
	iats []time.Duration // each proof's iat minus the provider's time
}

func (p *skewedProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().Add(p.skew)
	if p.date {
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	} else {
		w.Header()["Date"] = nil
	}
	c, err := parseClaims(r.Header.Get("DPoP"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	off := time.Unix(c.IAT, 0).Sub(now)
	p.mu.Lock()
	p.iats = append(p.iats, off)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if p.refuseAll || off > 15*time.Second || off < -25*time.Second {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_dpop_proof","error_description":"DPoP proof is not active"}`)
		return
	}
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"iat":%d,"typ":"DPoP"}`, now.Unix()))
	fmt.Fprintf(w, `{"access_token":"e30.%s.c2ln","token_type":"DPoP"}`, payload)
}

func (p *skewedProvider) seen() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.iats...)
}

func (p *skewedProvider) post(t *testing.T, tr *Transport, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Post(url+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func near(d, want time.Duration) bool { return d > want-2*time.Second && d < want+2*time.Second }

// A provider whose clock is 60 s off (either way) refuses the first proof,
// dated by the local clock; its answer's Date shows the skew, and the
// request goes once more dated by the provider's clock. From then on
// proofs to it are dated right from the start.
func TestTransportDatesProofsByTheProvidersClock(t *testing.T) {
	for _, skew := range []time.Duration{60 * time.Second, -60 * time.Second} {
		p := &skewedProvider{skew: skew, date: true}
		srv := httptest.NewServer(p)
		key, _ := NewKey()
		tr := &Transport{Key: key, Clocks: &Clocks{}}
		for i := range 2 {
			if status, body := p.post(t, tr, srv.URL); status != 200 {
				t.Fatalf("skew %v, request %d: %d %s", skew, i, status, body)
			}
		}
		iats := p.seen()
		if len(iats) != 3 || !near(iats[0], -skew) || !near(iats[1], 0) || !near(iats[2], 0) {
			t.Fatalf("skew %v: the provider saw proofs dated %v from its clock, want [%v 0 0]", skew, iats, -skew)
		}
		if off := tr.Clocks.Offset(strings.ToLower(srv.URL)); !near(off, skew) {
			t.Fatalf("skew %v: measured %v", skew, off)
		}
		srv.Close()
	}
}

// Keycloak sends no Date: its clock is read from the iat of the access
// token it issued, so a clock that drifts after sign-in (here 12 s, still
// within what it accepts) does not drift the proofs with it.
func TestTransportReadsTheClockOfTokenAnswers(t *testing.T) {
	p := &skewedProvider{skew: 12 * time.Second}
	srv := httptest.NewServer(p)
	defer srv.Close()
	key, _ := NewKey()
	tr := &Transport{Key: key, Clocks: &Clocks{}}
	for i := range 2 {
		if status, body := p.post(t, tr, srv.URL); status != 200 {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	if iats := p.seen(); len(iats) != 2 || !near(iats[0], -12*time.Second) || !near(iats[1], 0) {
		t.Fatalf("the provider saw proofs dated %v from its clock, want [-12s 0]", iats)
	}
}

// A refused proof is sent again only when the answer shows a skew, and
// only once; without a Date or token to read the provider's time from,
// the refusal reaches the caller as it came.
func TestTransportRetriesASkewedProofOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *skewedProvider
		want int
	}{
		{"refused, clocks agree", &skewedProvider{date: true, refuseAll: true}, 1},
		{"refused, 60 s skew", &skewedProvider{skew: time.Minute, date: true, refuseAll: true}, 2},
		{"60 s skew, no Date", &skewedProvider{skew: time.Minute}, 1},
	} {
		srv := httptest.NewServer(tc.p)
		key, _ := NewKey()
		status, body := tc.p.post(t, &Transport{Key: key, Clocks: &Clocks{}}, srv.URL)
		srv.Close()
		if n := len(tc.p.seen()); n != tc.want || status != 400 || !strings.Contains(body, "invalid_dpop_proof") {
			t.Errorf("%s: %d requests, answer %d %s; want %d requests and the refusal", tc.name, n, status, body, tc.want)
		}
	}
}

// The DPoP errors a proof can meet: a token endpoint's in its 400 body
// (Keycloak words a refused proof invalid_request "DPoP proof ..." or
// invalid_dpop_proof), a resource server's in WWW-Authenticate.
func TestProofErrorReadsBothForms(t *testing.T) {
	for _, tc := range []struct {
		status int
		auth   string
		body   string
		want   string
	}{
		{400, "", `{"error":"use_dpop_nonce"}`, "use_dpop_nonce"},
		{400, "", `{"error":"invalid_dpop_proof","error_description":"x"}`, "invalid_dpop_proof"},
		{400, "", `{"error":"invalid_request","error_description":"DPoP proof is not active"}`, "invalid_dpop_proof"},
		{400, "", `{"error":"invalid_request","error_description":"Missing parameter"}`, ""},
		{400, "", `{"error":"invalid_grant","error_description":"DPoP proof is missing"}`, ""},
		{400, "", `not json`, ""},
		{401, `DPoP error="invalid_dpop_proof", algs="ES256"`, "", "invalid_dpop_proof"},
		{401, `DPoP error="use_dpop_nonce"`, "", "use_dpop_nonce"},
		{401, `Bearer error="invalid_token"`, "", ""},
		{200, "", `{"error":"invalid_dpop_proof"}`, ""},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		if tc.auth != "" {
			resp.Header.Set("WWW-Authenticate", tc.auth)
		}
		if got := proofError(resp); got != tc.want {
			t.Errorf("%d %q %s: %q, want %q", tc.status, tc.auth, tc.body, got, tc.want)
		}
		if body, _ := io.ReadAll(resp.Body); string(body) != tc.body {
			t.Errorf("the body was not put back: %q", body)
		}
	}
}

// parseClaims reads a proof's claims (the signature is verify's matter).
func parseClaims(proof string) (claims, error) {
	var c claims
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("a proof of %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}
