package ipc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/internal/bearer"
)

// PathProof answers an access token together with a DPoP proof for one
// request (POST, ProofRequest -> ProofResponse). The proof is signed in
// the agent with the login's key, which never leaves it. For a Bearer
// token (an unbound login, or dpop: refresh) the answer is the token
// alone, so a caller needs one call either way.
const PathProof = "/v1/proof"

// Limits of a ProofRequest.
const (
	MaxProofMethod = 32
	MaxProofURL    = 8 << 10
	MaxProofNonce  = 512
)

// TokenTypeDPoP is the token type of a DPoP-bound access token: send it
// as "Authorization: DPoP <token>" with the proof in a "DPoP" header.
const TokenTypeDPoP = "DPoP"

// ProofRequest asks for an access token and a proof for the request
// Method URL (htm, htu; the URL's query and fragment are not signed),
// with the server's DPoP-Nonce when it sent one.
type ProofRequest struct {
	Profile  string   `json:"profile"`
	Scopes   []string `json:"scopes,omitempty"`
	MinValid float64  `json:"min_valid,omitempty"`
	// ForceRefresh: as TokenRequest's (the caller's token was refused).
	ForceRefresh bool   `json:"force_refresh,omitempty"`
	Method       string `json:"method"`
	URL          string `json:"url"`
	Nonce        string `json:"nonce,omitempty"`
}

// ProofResponse is the token to send and, when TokenType is DPoP, the
// proof to send with it (Proof is empty for a Bearer token).
type ProofResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	Proof       string    `json:"proof,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"`
}

// String never shows the token or the proof.
func (p ProofResponse) String() string {
	return fmt.Sprintf("ProofResponse{type=%s proof=%t expires_at=%s}", p.TokenType, p.Proof != "", p.ExpiresAt.Format(time.RFC3339))
}

// CheckProofTarget checks what a ProofRequest says of the request to
// prove: the method an HTTP token, the URL absolute http(s) with an ASCII
// host (the IDNA form a client sends) and without userinfo, the nonce RFC
// 9449's NQCHARs, all within the limits. The error names the field.
func CheckProofTarget(method, rawURL, nonce string) error {
	if method == "" || len(method) > MaxProofMethod || !isHTTPToken(method) {
		return fmt.Errorf("method must be an HTTP method (1-%d token characters, e.g. GET)", MaxProofMethod)
	}
	if rawURL == "" || len(rawURL) > MaxProofURL {
		return fmt.Errorf("url must be an absolute http(s) URL of at most %d bytes", MaxProofURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return errors.New("url must be an absolute http:// or https:// URL with a host")
	}
	if u.User != nil {
		return errors.New("url must not carry a user name or password")
	}
	if !isASCII(u.Hostname()) {
		return errors.New("url's host must be ASCII: give an internationalised name in its IDNA form (xn--...), as the request sends it")
	}
	if strings.ContainsAny(rawURL, " \t\r\n") {
		return errors.New("url must not contain spaces or line breaks")
	}
	if nonce != "" && !ValidNonce(nonce) {
		return fmt.Errorf(`nonce must be at most %d printable ASCII characters without spaces, '"' or '\' (RFC 9449 NQCHAR)`, MaxProofNonce)
	}
	return nil
}

// ValidNonce says whether s is a DPoP nonce a proof may carry: 1 to
// MaxProofNonce of RFC 9449's NQCHARs.
func ValidNonce(s string) bool {
	if s == "" || len(s) > MaxProofNonce {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isHTTPToken: RFC 9110 token characters.
func isHTTPToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Proof asks the agent for a token and a proof for one request.
func (c *Client) Proof(ctx context.Context, req ProofRequest) (*ProofResponse, error) {
	var out ProofResponse
	err := c.do(ctx, http.MethodPost, PathProof, req, &out)
	var ae *Error
	if errors.As(err, &ae) && ae.Code == CodeNoEndpoint {
		return nil, &Error{Code: CodeInternal, Status: ae.Status, Message: "the running agent does not sign DPoP proofs",
			Hint: "the running agent is older than this kc-agent: restart it (kc-agent service restart, or stop it and run the command again)"}
	}
	if err != nil {
		return nil, err
	}
	// Token, type and proof go into header lines: refuse anything a
	// header value of theirs can not hold.
	if out.AccessToken == "" || !bearer.IsToken(out.AccessToken) || !bearer.IsToken(out.TokenType) ||
		(out.Proof != "" && !bearer.IsToken(out.Proof)) {
		return nil, &Error{Code: CodeInternal, Message: "the agent answered a token, type or proof with characters a header can not carry; refusing to use it"}
	}
	if strings.EqualFold(out.TokenType, TokenTypeDPoP) && out.Proof == "" {
		return nil, &Error{Code: CodeInternal, Message: "the agent answered a DPoP-bound token without a proof"}
	}
	return &out, nil
}
