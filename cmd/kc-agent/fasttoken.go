package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// The values below mirror kc-agent-core's (config.DefaultProfile,
// daemon.MaxMinValid, ipc.Host and ipc.PathToken, the token command's
// flags); importing them would link the daemon. fasttoken_test.go checks
// that they agree.
const (
	defaultProfile = "default"
	maxMinValid    = 24 * time.Hour
	agentHost      = "kc-agent.sock"
	pathToken      = "/v1/token"
	// maxAnswer bounds what is read from the socket (the core reads 4 MiB).
	maxAnswer = 1 << 20
)

// tokenCall is a `kc-agent token` the fast path can answer.
type tokenCall struct {
	profile  string
	scopes   []string
	minValid time.Duration
	format   string // raw, header or env
}

// askResult is how a fast-path call ended.
type askResult int

const (
	askCore     askResult = iota // the core must do it (and report whatever went wrong)
	askOK                        // the agent answered (the answer may still be refused)
	askTimedOut                  // the agent took the request but did not answer in time
)

// askTimeout bounds the whole exchange with the agent, as the core's 60 s.
var askTimeout = 60 * time.Second

// fastToken answers `kc-agent token args...` when it is plain: options it
// knows, a verified agent that answers 200 with a token. askCore means
// "let kc-agent-core do it", which asks again: an agent's error costs a
// second request (fast: the agent answers errors from its state), and the
// hot path, a success, costs one. With askTimedOut, path is the agent's
// socket.
func fastToken(args []string) (out []byte, path string, res askResult) {
	call, ok := parseTokenArgs(args, os.Getenv)
	if !ok {
		return nil, "", askCore
	}
	body, ok := call.body()
	if !ok {
		return nil, "", askCore
	}
	answer, path, res := askAgent(tokenRequest(body))
	if res != askOK {
		return nil, path, res
	}
	tok, typ, ok := tokenFromAnswer(answer)
	if !ok {
		return nil, "", askCore
	}
	return call.output(tok, typ), "", askOK
}

// parseTokenArgs accepts the token command's options in the forms the
// core's flag parser accepts (--name value, --name=value, -p value, -pvalue)
// and refuses anything else: --help, --force-refresh, --type id,
// --format json, arguments, unknown options, values starting with "-".
func parseTokenArgs(args []string, getenv func(string) string) (tokenCall, bool) {
	c := tokenCall{format: "raw"}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch {
		case strings.HasPrefix(name, "--"):
			name = name[2:]
		case strings.HasPrefix(args[i], "-p") && len(args[i]) > 2:
			name, value, hasValue = "profile", strings.TrimPrefix(args[i][2:], "="), true
		case args[i] == "-p":
			name = "profile"
		default:
			return c, false
		}
		if name == "no-autostart" && !hasValue {
			continue // the fast path never starts an agent
		}
		if !hasValue {
			if i+1 == len(args) {
				return c, false
			}
			i++
			value = args[i]
		}
		if value == "" || value[0] == '-' || !setTokenOption(&c, name, value) {
			return c, false
		}
	}
	if c.profile == "" {
		c.profile = getenv("KC_AGENT_PROFILE")
	}
	if c.profile == "" {
		c.profile = defaultProfile
	}
	return c, true
}

func setTokenOption(c *tokenCall, name, value string) bool {
	switch name {
	case "profile":
		c.profile = value
	case "scope":
		c.scopes = append(c.scopes, value)
	case "min-valid":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || d > maxMinValid {
			return false
		}
		c.minValid = d
	case "format":
		if value != "raw" && value != "header" && value != "env" {
			return false
		}
		c.format = value
	case "type":
		return value == "access"
	default:
		return false
	}
	return true
}

// body is the JSON the core's ipc.Client sends for the same call. Values
// are written as they are: one that would need escaping goes to the core.
func (c tokenCall) body() ([]byte, bool) {
	b := append(make([]byte, 0, 128), `{"profile":`...)
	b, ok := appendPlainString(b, c.profile)
	if len(c.scopes) > 0 {
		b = append(b, `,"scopes":[`...)
		for i, s := range c.scopes {
			if i > 0 {
				b = append(b, ',')
			}
			var sok bool
			b, sok = appendPlainString(b, s)
			ok = ok && sok
		}
		b = append(b, ']')
	}
	if c.minValid > 0 {
		b = append(b, `,"min_valid":`...)
		b = strconv.AppendFloat(b, c.minValid.Seconds(), 'f', -1, 64)
	}
	b = append(b, `,"type":"access"}`...)
	return b, ok
}

// appendPlainString appends s as a JSON string if it is printable ASCII
// without quotes or backslashes.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

func tokenRequest(body []byte) []byte {
	req := make([]byte, 0, 256+len(body))
	req = append(req, "POST "+pathToken+" HTTP/1.1\r\nHost: "+agentHost+"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	return append(req, body...)
}

// output is what the core's token command prints for the same call.
func (c tokenCall) output(tok, typ string) []byte {
	switch c.format {
	case "header":
		return []byte("Authorization: " + typ + " " + tok + "\n")
	case "env":
		return []byte("export KC_AGENT_ACCESS_TOKEN='" + tok + "'\n")
	}
	return []byte(tok + "\n")
}
