package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
	"github.com/kc-agent/kc-agent/internal/privatefile"
)

// ProxyUser is the user name in the forward proxy's credentials.
const ProxyUser = "kc"

// LoadOrCreateSecret returns the per-user proxy secret, kept in a 0600 file
// (a file with a DACL for the user alone, on Windows) in the state
// directory and created on first use.
func LoadOrCreateSecret(stateDir string) (string, error) {
	path := filepath.Join(stateDir, "proxy-secret")
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if len(s) >= 32 {
			var exposed *privatefile.ExposedError
			if err := privatefile.Check(path); errors.As(err, &exposed) {
				return "", fmt.Errorf("%s is readable by others (%s); run `%s`", path, exposed.Detail, privatefile.Fix(path))
			}
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// checkProxyAuth validates a Proxy-Authorization header in constant time.
func checkProxyAuth(header, secret string) bool {
	const prefix = "Basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(ProxyUser))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(secret))
	return userOK&passOK == 1
}
