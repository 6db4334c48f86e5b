//go:build unix

package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"testing"
)

type answerVectors struct {
	Cases []struct {
		Name   string `json:"name"`
		Status int    `json:"status"`
		Answer string `json:"answer"`
		OK     bool   `json:"ok"`
	} `json:"cases"`
}

func loadAnswerVectors(t *testing.T) answerVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/duplicate_keys.json")
	if err != nil {
		t.Fatal(err)
	}
	var v answerVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 10 {
		t.Fatalf("only %d cases", len(v.Cases))
	}
	return v
}

// The vectors the Python client's tests read too: a real client, a raw
// agent on a socket, each answer as written.
func TestAnswerKeyVectors(t *testing.T) {
	v := loadAnswerVectors(t)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			reason := map[int]string{200: "OK", 401: "Unauthorized", 503: "Service Unavailable"}[c.Status]
			cl := rawAgent(t, fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s",
				c.Status, reason, strconv.Itoa(len(c.Answer)), c.Answer))
			_, err := cl.Token(context.Background(), TokenRequest{Profile: "p"})
			ambiguous := errors.Is(err, ErrAmbiguousAnswer)
			switch {
			case c.OK && ambiguous:
				t.Errorf("refused: %v", err)
			case c.OK && c.Status == 200 && err != nil:
				t.Errorf("error: %v", err)
			case !c.OK && !ambiguous:
				t.Errorf("not refused as ambiguous (err: %v)", err)
			}
		})
	}
}

// The keys a call checks are those its answer type reads, and the error
// body's.
func TestAnswerKeys(t *testing.T) {
	got := slices.Sorted(maps.Values(answerKeys(&TokenResponse{})))
	for _, want := range []string{"access_token", "error", "expires_at", "expires_in", "hint", "id_token", "message", "token_type"} {
		if !slices.Contains(got, want) {
			t.Errorf("token answer keys %q lack %q", got, want)
		}
	}
	if slices.Contains(got, "upstream") {
		t.Errorf("token answer keys %q include the proxy answer's", got)
	}
	if k := answerKeys(&StatusResponse{}); k[foldKey("Upstream")] != "upstream" || k[foldKey("warnings")] != "warnings" {
		t.Errorf("status answer keys lack nested ones: %v", k)
	}
	if k := answerKeys(nil); len(k) != 3 {
		t.Errorf("no answer type: %v", k)
	}
}

func TestFoldKey(t *testing.T) {
	for _, c := range [][2]string{{"access_token", "ACCESS_TOKEN"}, {"acceſſ_token", "access_token"}, {"Kelvin", "kelvin"}, {"ς", "Σ"}} {
		if foldKey(c[0]) != foldKey(c[1]) {
			t.Errorf("%q and %q fold apart", c[0], c[1])
		}
	}
	if foldKey("access-token") == foldKey("access_token") {
		t.Error("- and _ fold alike")
	}
}

func FuzzCheckKeys(f *testing.F) {
	f.Add(`{"access_token":"a","Access_Token":"b"}`)
	f.Add(`{"a":[{"b":1},{"b":2}],"c":{"d":null}}`)
	f.Fuzz(func(t *testing.T, s string) {
		err := checkKeys([]byte(s), answerKeys(&TokenResponse{}))
		if err == nil && !json.Valid([]byte(s)) {
			t.Fatalf("%q: invalid JSON passed", s)
		}
	})
}
