package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/ipc"
)

func postProof(h http.Handler, body string) (int, ipc.Error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "http://"+ipc.Host+ipc.PathProof, strings.NewReader(body))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.ServeHTTP(rec, req.WithContext(ctx))
	var e ipc.Error
	json.Unmarshal(rec.Body.Bytes(), &e)
	return rec.Code, e
}

// The proof endpoint refuses a malformed request with a 400 that names
// what is wrong, and answers a well-formed one as /v1/token would (here:
// not logged in).
func TestProofEndpoint(t *testing.T) {
	h := testDaemon(t)
	bad := map[string]string{
		`{"method":"GET"}`:                                                               "url must",
		`{"url":"https://a/"}`:                                                           "method must",
		`{"method":"GET","url":"https://u:p@a/"}`:                                        "user name",
		`{"method":"GET","url":"https://a/","nonce":"a b"}`:                              "nonce must",
		`{"method":"GET","url":"https://a/","profile":"a b"}`:                            "invalid profile",
		`{"method":"GET","url":"https://a/","min_valid":-1}`:                             "min_valid",
		`{"method":"GET","url":"https://a/","scopes":["a b"]}`:                           "scope",
		`{"method":"GET","url":"https://a/","unknown":1}`:                                "unknown field",
		`{"method":"GET","url":"file:///etc/passwd"}`:                                    "url must",
		`{"method":"GET","url":"https://a/","nonce":"` + strings.Repeat("n", 513) + `"}`: "nonce must",
	}
	for body, want := range bad {
		code, e := postProof(h, body)
		if code != 400 || e.Code != ipc.CodeBadRequest || !strings.Contains(e.Message, want) {
			t.Errorf("%s: HTTP %d %s %q, want 400 bad_request about %q", body, code, e.Code, e.Message, want)
		}
	}
	code, e := postProof(h, `{"profile":"","scopes":[],"min_valid":0,"method":"GET","url":"https://api.example/x?y","nonce":""}`)
	if code != 401 || e.Code != ipc.CodeLoginRequired || e.Hint == "" {
		t.Fatalf("a valid request without a login: HTTP %d %+v", code, e)
	}
}

// FuzzProofRequest: arbitrary bodies get a typed JSON error, never a
// crash, a 500, or a proof.
func FuzzProofRequest(f *testing.F) {
	f.Add([]byte(`{"method":"GET","url":"https://api.example/x?y"}`))
	f.Add([]byte(`{"method":"G ET","url":"https://u@a/","nonce":"\u0000"}`))
	f.Add([]byte(`{"method":"GET","url":"http://[::1/"}`))
	h := testDaemon(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "http://"+ipc.Host+ipc.PathProof, bytes.NewReader(body))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code == http.StatusInternalServerError || rec.Code == http.StatusOK {
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("untyped error body: %s", rec.Body)
		}
	})
}
