package main

import (
	"bytes"
	"strconv"
)

// tokenFromAnswer reads the agent's whole HTTP answer to a token request:
// 200, a Content-Length that matches, and a flat JSON object whose
// access_token and token_type are plain strings. Anything else is not
// ok, and the core asks again and reports it.
func tokenFromAnswer(answer []byte) (tok, typ string, ok bool) {
	head, body, found := bytes.Cut(answer, []byte("\r\n\r\n"))
	if !found {
		return "", "", false
	}
	status, headers, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return "", "", false
	}
	n, ok := contentLength(headers)
	if !ok || n != len(body) {
		return "", "", false
	}
	fields, ok := flatJSONStrings(body)
	if !ok {
		return "", "", false
	}
	tok, typ = fields["access_token"], fields["token_type"]
	if !tokenLike(tok) || !tokenLike(typ) {
		return "", "", false
	}
	return tok, typ, true
}

// contentLength finds the one Content-Length header; chunked or missing
// framing is not ok.
func contentLength(headers []byte) (int, bool) {
	n, seen := -1, false
	for len(headers) > 0 {
		var line []byte
		line, headers, _ = bytes.Cut(headers, []byte("\r\n"))
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return 0, false
		}
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "content-length":
			v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if seen || err != nil || v < 0 {
				return 0, false
			}
			n, seen = v, true
		case "transfer-encoding":
			return 0, false
		}
	}
	return n, seen
}

// flatJSONStrings reads a JSON object of plain values: strings without
// escapes (kept), numbers, true, false, null (skipped). Nested values and
// escaped strings are not ok.
func flatJSONStrings(b []byte) (map[string]string, bool) {
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
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == '"' {
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			if _, dup := out[key]; dup {
				return nil, false
			}
			out[key] = v
		} else if !p.scalar() {
			return nil, false
		}
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
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
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

// scalar skips a number, true, false or null.
func (p *jsonScan) scalar() bool {
	start := p.i
	for p.i < len(p.b) && bytes.IndexByte([]byte("0123456789+-.eEtrufalsn"), p.b[p.i]) >= 0 {
		p.i++
	}
	switch v := string(p.b[start:p.i]); v {
	case "true", "false", "null":
		return true
	default:
		_, err := strconv.ParseFloat(v, 64)
		return err == nil && v != "" && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
	}
}

// tokenLike: a non-empty run of the characters of a JWT or a token type
// (base64url, '.', '~', '+', '/', '='), nothing a shell or a header would
// read differently.
func tokenLike(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}
