package dpop

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A request that carries a DPoP access token gets a proof with the
// token's hash (ath, RFC 9449 4.2); a Bearer or unauthenticated one none.
func TestTransportHashesADPoPAccessToken(t *testing.T) {
	key, _ := NewKey()
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Get("DPoP")
		mu.Unlock()
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte("bound-token"))
	for auth, want := range map[string]string{"DPoP bound-token": base64.RawURLEncoding.EncodeToString(sum[:]), "Bearer bound-token": "", "": ""} {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/account", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Transport: &Transport{Key: key}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		c, _ := verify(t, last, http.MethodDelete, srv.URL+"/account")
		mu.Unlock()
		if c.ATH != want {
			t.Errorf("Authorization %q: ath %q, want %q", auth, c.ATH, want)
		}
	}
}
