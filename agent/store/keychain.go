package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/zalando/go-keyring"
)

// Service is the keychain service name every item is filed under.
const Service = "kc-agent"

// DefaultTimeout bounds every keychain call: go-keyring can block forever on
// a locked or absent Secret Service.
const DefaultTimeout = 5 * time.Second

// Keychain stores records in the OS keychain via go-keyring.
type Keychain struct {
	Timeout time.Duration
}

// NewKeychain returns a keychain store with the default timeout.
func NewKeychain() *Keychain { return &Keychain{Timeout: DefaultTimeout} }

// Account is the keychain account name for a profile, readable in the
// platform's keychain UI.
func Account(profile string) string { return "profile:" + profile }

func (k *Keychain) Describe() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain (service kc-agent)"
	case "windows":
		return "Windows Credential Manager (service kc-agent)"
	default:
		return "Secret Service keyring (service kc-agent)"
	}
}

// call runs f under the timeout. On timeout the goroutine is abandoned: the
// library offers no way to cancel a D-Bus call in flight.
func (k *Keychain) call(ctx context.Context, op string, f func() error) error {
	if err := sessionBus(); err != nil {
		return &UnavailableError{Op: op, Err: err}
	}
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if errors.Is(err, keyring.ErrNotFound) {
			return ErrNotFound
		}
		if errors.Is(err, keyring.ErrSetDataTooBig) {
			return fmt.Errorf("keychain %s: the token is too large for this keychain: %w", op, err)
		}
		return &UnavailableError{Op: op, Err: err}
	case <-ctx.Done():
		return &UnavailableError{Op: op, Err: fmt.Errorf("no answer within %s (is the keychain locked, or its service hung?)", timeout)}
	}
}

// UnavailableError says the keychain could not be used and what to do.
type UnavailableError struct {
	Op  string
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("keychain %s failed: %v", e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ErrNoSessionBus: on Linux and the BSDs, without a D-Bus session bus
// there is no keychain, and kc-agent never starts a bus itself.
var ErrNoSessionBus = errors.New("no keychain is available here: there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), and kc-agent does not start one")

// Hint names the ways out.
func (e *UnavailableError) Hint() string {
	if errors.Is(e.Err, ErrNoSessionBus) {
		return "keep the token in a 0600 file: set `store: file` on the profile in your config (`kc-agent login --store file`), " +
			"or on a shared host the administrator sets `store: file` in the system-wide config for everyone"
	}
	if runtime.GOOS == "linux" {
		return "start and unlock a Secret Service (e.g. gnome-keyring-daemon in your desktop session), " +
			"or keep the token in a 0600 file with `kc-agent login --store file`"
	}
	return "unlock the keychain, or keep the token in a 0600 file with `kc-agent login --store file`"
}

func (k *Keychain) Get(ctx context.Context, profile string) (Record, error) {
	var secret string
	err := k.call(ctx, "read", func() error {
		var err error
		secret, err = keyring.Get(Service, Account(profile))
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return decode([]byte(secret))
}

func (k *Keychain) Put(ctx context.Context, profile string, r Record) error {
	data, err := encode(r)
	if err != nil {
		return err
	}
	return k.call(ctx, "write", func() error { return keyring.Set(Service, Account(profile), string(data)) })
}

func (k *Keychain) Delete(ctx context.Context, profile string) error {
	return k.call(ctx, "delete", func() error { return keyring.Delete(Service, Account(profile)) })
}

// Probe writes, reads back and deletes a throwaway item, to tell whether
// the keychain works at all (doctor, login).
func (k *Keychain) Probe(ctx context.Context) error {
	const account = "probe:kc-agent-doctor"
	want := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if err := k.call(ctx, "write", func() error { return keyring.Set(Service, account, want) }); err != nil {
		return err
	}
	var got string
	if err := k.call(ctx, "read", func() error {
		var err error
		got, err = keyring.Get(Service, account)
		return err
	}); err != nil {
		return err
	}
	if err := k.call(ctx, "delete", func() error { return keyring.Delete(Service, account) }); err != nil {
		return err
	}
	if got != want {
		return &UnavailableError{Op: "read", Err: errors.New("read back a different value than written")}
	}
	return nil
}

// CheckWritable is a cheap look for an item nobody writes: an answer,
// found or not, means the keychain is reachable; anything else is an
// *UnavailableError (which wraps ErrUnavailable).
func (k *Keychain) CheckWritable(ctx context.Context) error {
	err := k.call(ctx, "check", func() error {
		_, err := keyring.Get(Service, "probe:kc-agent-check")
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
