package dpop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A proof is dated (iat) and the server accepts it only near its own
// clock: Keycloak takes iat from 25 s before its time to 15 s after, and
// sends no nonce to date proofs by. A machine whose clock is off by more
// fails every token request. So the provider's clock is read from its
// answers, per origin, and proofs to it are dated by that clock once it
// is known: from the Date header (which a reverse proxy in front of
// Keycloak adds; Keycloak 26 itself sends none) and from the iat of the
// access token in a token answer (Keycloak's own clock).
//
// Proofs the agent signs for APIs (routes, /v1/proof) stay on the local
// clock: an API is another server with its own clock, and what the
// provider's clock says about it is a guess.

// skewNoise is the least offset taken as a skew: Date and iat have whole
// seconds, and the answer took time to come. Below it the local clock is
// as good.
const skewNoise = 2 * time.Second

// maxClocks bounds the origins remembered.
const maxClocks = 256

// maxTokenAnswer bounds what is read of a 200 answer to find its access
// token's iat; a longer answer is passed on unread.
const maxTokenAnswer = 256 << 10

// Clocks keeps, per origin, how far that server's clock is ahead of the
// local one (negative: behind).
type Clocks struct {
	mu sync.Mutex
	m  map[string]time.Duration
}

// ProviderClocks is shared by every Transport without Clocks of its own:
// a provider's clock is its origin's, whichever login's key signs.
var ProviderClocks = &Clocks{}

// Offset is how far origin's clock is ahead of the local one, as last
// measured (0 when unknown or within skewNoise).
func (c *Clocks) Offset(origin string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[origin]
}

func (c *Clocks) set(origin string, off time.Duration) {
	if off > -skewNoise && off < skewNoise {
		off = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxClocks {
		c.m = map[string]time.Duration{}
	}
	c.m[origin] = off
}

// observe reads the server's time from resp, received at local, and
// returns origin's offset from then on (the old one when resp tells
// nothing).
func (c *Clocks) observe(origin string, resp *http.Response, local time.Time) time.Duration {
	if at, ok := answerTime(resp); ok {
		c.set(origin, at.Sub(local))
	}
	return c.Offset(origin)
}

// answerTime is the server's time when it answered: the iat of a token
// answer's access token, else the Date header; half a second is added to
// whole seconds (the middle of the second they name).
func answerTime(resp *http.Response) (time.Time, bool) {
	if iat, ok := tokenIssuedAt(resp); ok {
		return time.Unix(iat, 0).Add(time.Second / 2), true
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		return d.Add(time.Second / 2), true
	}
	return time.Time{}, false
}

// tokenIssuedAt reads the iat of the access token in a 200 JSON answer
// (a JWT, as Keycloak's are), without checking it: it is only the
// provider's time, and a wrong one only makes proofs to that same
// provider fail. The body is put back as it was.
func tokenIssuedAt(resp *http.Response) (int64, bool) {
	if resp.StatusCode != http.StatusOK || resp.Body == nil || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return 0, false
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer+1))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	if err != nil || len(data) > maxTokenAnswer {
		return 0, false
	}
	var a struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(data, &a) != nil {
		return 0, false
	}
	parts := strings.Split(a.AccessToken, ".")
	if len(parts) != 3 {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	var c struct {
		IAT int64 `json:"iat"`
	}
	if json.Unmarshal(payload, &c) != nil || c.IAT <= 0 {
		return 0, false
	}
	return c.IAT, true
}
