// Package store keeps offline tokens: in the OS keychain, or, when the user
// asks for it explicitly, in a 0600 file. There is no silent fallback
// between the two.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is what is stored for one profile. It stays well under Windows'
// 2560-byte credential limit for a typical Keycloak offline token.
type Record struct {
	Version      int       `json:"v"`
	RefreshToken string    `json:"rt"`
	Issuer       string    `json:"iss"`
	ClientID     string    `json:"cid"`
	Scopes       []string  `json:"scp,omitempty"`
	Subject      string    `json:"sub,omitempty"`
	Username     string    `json:"usr,omitempty"`
	SavedAt      time.Time `json:"at"`
	// KeyThumbprint is the DPoP key's thumbprint (cnf.jkt) when the login
	// is bound to a key (KeyStore); empty for an unbound login.
	KeyThumbprint string `json:"jkt,omitempty"`
	// DPoP is the mode a bound login was made in: "refresh" (its access
	// tokens are served Bearer only) or "on"; empty for an unbound login
	// and for one bound before modes existed (those were "on").
	DPoP string `json:"dpop,omitempty"`
}

// String never shows the token.
func (r Record) String() string {
	return fmt.Sprintf("Record{issuer=%s client=%s user=%s saved=%s}", r.Issuer, r.ClientID, r.Username, r.SavedAt.Format(time.RFC3339))
}

// GoString keeps %#v from printing the token too.
func (r Record) GoString() string { return r.String() }

// ErrNotFound means nothing is stored for the profile: the user has to log in.
var ErrNotFound = errors.New("no stored login")

// ErrUnavailable means the backend (the keychain) can not be reached.
var ErrUnavailable = errors.New("keychain unavailable")

// Store keeps one record per profile.
type Store interface {
	Get(ctx context.Context, profile string) (Record, error)
	Put(ctx context.Context, profile string, r Record) error
	Delete(ctx context.Context, profile string) error
	// CheckWritable tells, before a sign-in starts, whether a record could
	// be written (an error wrapping ErrUnavailable: no keychain here).
	CheckWritable(ctx context.Context) error
	// Describe says where records live, for status and doctor output.
	Describe() string
}

func encode(r Record) ([]byte, error) {
	r.Version = 1
	return json.Marshal(r)
}

func decode(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("stored login is corrupt (not JSON); run `kc-agent login` again")
	}
	if r.RefreshToken == "" || r.Issuer == "" {
		return Record{}, fmt.Errorf("stored login is incomplete; run `kc-agent login` again")
	}
	return r, nil
}
