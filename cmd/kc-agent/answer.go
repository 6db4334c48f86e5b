package main

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/internal/bearer"
)

// tokenFromAnswer reads the agent's whole HTTP answer to a token request,
// and accepts only the one shape the agent writes (ipc.WriteJSON of an
// ipc.TokenResponse): "HTTP/1.1 200 OK", CRLF header lines of printable
// ASCII, one Content-Length that matches the body, and a flat JSON object
// whose fields have the types the core decodes them into. Anything else,
// even what net/http and encoding/json would read some way, is not ok: the
// core asks again and reports it.
func tokenFromAnswer(answer []byte) (tok, typ string, ok bool) {
	head, body, found := bytes.Cut(answer, []byte("\r\n\r\n"))
	if !found {
		return "", "", false
	}
	lines := strings.Split(string(head), "\r\n")
	if lines[0] != "HTTP/1.1 200 OK" {
		return "", "", false
	}
	n, ok := contentLength(lines[1:])
	if !ok || n != len(body) {
		return "", "", false
	}
	fields, ok := tokenResponseFields(body)
	if !ok || !bearer.IsToken(fields["access_token"]) || !bearer.IsToken(fields["token_type"]) {
		return "", "", false
	}
	return fields["access_token"], fields["token_type"], true
}

// answerComplete says whether answer holds a whole head and as many body
// bytes as its Content-Length names, so the reader need not wait for the
// agent to close.
func answerComplete(answer []byte) bool {
	i := bytes.Index(answer, []byte("\r\n\r\n"))
	if i < 0 {
		return false
	}
	lines := strings.Split(string(answer[:i]), "\r\n")
	n, ok := contentLength(lines[1:])
	return !ok || len(answer)-i-4 >= n // a head the parser refuses is complete too
}

// contentLength finds the one Content-Length among header lines; a line
// that is not "token: printable ASCII", a second length, a sign, or any
// Transfer-Encoding is not ok.
func contentLength(lines []string) (int, bool) {
	n := -1
	for _, line := range lines {
		name, value, found := strings.Cut(line, ":")
		if !found || !isHTTPToken(name) || !printable(value) {
			return 0, false
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "content-length":
			if n >= 0 || value == "" || len(value) > 7 || strings.Trim(value, "0123456789") != "" {
				return 0, false
			}
			n, _ = strconv.Atoi(value)
		case "transfer-encoding":
			return 0, false
		}
	}
	return n, n >= 0
}

func isHTTPToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 0x20 && s[i] != '\t') || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// The fields of ipc.TokenResponse, and the shape each must have here.
var responseFields = map[string]func(value string, isString bool) bool{
	"access_token": func(v string, str bool) bool { return str },
	"id_token":     func(v string, str bool) bool { return str },
	"token_type":   func(v string, str bool) bool { return str },
	"expires_at":   func(v string, str bool) bool { return str && isUTCSeconds(v) && parsesAsTime(v) },
	"expires_in":   func(v string, str bool) bool { return !str && isJSONInt(v) },
}

// tokenResponseFields reads a flat JSON object. encoding/json matches keys
// without regard to case and lets the last duplicate win, so a key that
// equals another, or one of the response's fields, in another case is not
// ok; neither is a field of the wrong type, a nested value, or an escape.
func tokenResponseFields(b []byte) (map[string]string, bool) {
	p := jsonScan{b: b}
	out := map[string]string{}
	if !p.byte('{') {
		return nil, false
	}
	if p.byte('}') {
		return out, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false
		}
		lower := strings.ToLower(key)
		if _, dup := out[lower]; dup {
			return nil, false
		}
		value, isString, ok := p.value()
		check, known := responseFields[lower]
		if !ok || (known && (key != lower || !check(value, isString))) {
			return nil, false
		}
		out[lower] = value
		if p.byte('}') {
			return out, p.end()
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) ws() {
	for p.i < len(p.b) && strings.IndexByte(" \t\n\r", p.b[p.i]) >= 0 {
		p.i++
	}
}

// byte consumes c after optional white space.
func (p *jsonScan) byte(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScan) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// str reads a string of printable ASCII without escapes.
func (p *jsonScan) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return string(p.b[start : p.i-1]), true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return "", false
		}
	}
	return "", false
}

// value reads a plain string, a number (JSON's grammar), true, false or
// null.
func (p *jsonScan) value() (v string, isString, ok bool) {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '"' {
		v, ok = p.str()
		return v, true, ok
	}
	start := p.i
	for p.i < len(p.b) && strings.IndexByte("0123456789+-.eEtrufalsn", p.b[p.i]) >= 0 {
		p.i++
	}
	v = string(p.b[start:p.i])
	return v, false, v == "true" || v == "false" || v == "null" || isJSONNumber(v)
}

// isJSONNumber: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	i := digitRun(s)
	if i == 0 || (s[0] == '0' && i > 1) {
		return false
	}
	s = s[i:]
	if strings.HasPrefix(s, ".") {
		if i = digitRun(s[1:]); i == 0 {
			return false
		}
		s = s[1+i:]
	}
	if s != "" && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s != "" && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		if i = digitRun(s); i == 0 {
			return false
		}
		s = s[i:]
	}
	return s == ""
}

// isJSONInt: a JSON integer an int64 holds (up to 18 digits).
func isJSONInt(s string) bool {
	d := strings.TrimPrefix(s, "-")
	return isJSONNumber(s) && d != "" && digitRun(d) == len(d) && len(d) <= 18
}

// isUTCSeconds: the agent's expires_at, YYYY-MM-DDTHH:MM:SSZ.
func isUTCSeconds(s string) bool {
	const shape = "dddd-dd-ddTdd:dd:ddZ"
	if len(s) != len(shape) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if shape[i] == 'd' && (s[i] < '0' || s[i] > '9') || shape[i] != 'd' && s[i] != shape[i] {
			return false
		}
	}
	return true
}

func parsesAsTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
