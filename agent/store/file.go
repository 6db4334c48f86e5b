package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/atomicfile"
	"github.com/kc-agent/kc-agent/internal/privatefile"
)

// File keeps records in 0600 files under a 0700 directory (on Windows,
// files and directory with a DACL for the user alone). It exists for
// headless hosts without a keychain; the user opts in per profile and is
// warned on every use.
type File struct {
	Dir  string
	Warn io.Writer // every use prints a warning here when set
}

// NewFile returns a file store under the state directory.
func NewFile(warn io.Writer) (*File, error) {
	dir, err := config.StateDir()
	if err != nil {
		return nil, err
	}
	return &File{Dir: filepath.Join(dir, "tokens"), Warn: warn}, nil
}

func (f *File) Describe() string {
	if runtime.GOOS == "windows" {
		return "file " + f.Dir + " (private to your account, opted in)"
	}
	return "file " + f.Dir + " (0600, opted in)"
}

func (f *File) path(profile string) string { return filepath.Join(f.Dir, profile+".json") }

func (f *File) warn(profile string) {
	if f.Warn != nil {
		fmt.Fprintf(f.Warn, "kc-agent: warning: the offline token of profile %q is kept in a plain file (%s), not in a keychain\n", profile, f.path(profile))
	}
}

func (f *File) Get(ctx context.Context, profile string) (Record, error) {
	f.warn(profile)
	data, err := os.ReadFile(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("reading token file: %w", err)
	}
	var exposed *privatefile.ExposedError
	if err := privatefile.Check(f.path(profile)); errors.As(err, &exposed) {
		return Record{}, fmt.Errorf("token file %s is readable by others (%s); fix it with `%s` and log in again", f.path(profile), exposed.Detail, privatefile.Fix(f.path(profile)))
	}
	return decode(data)
}

func (f *File) Put(ctx context.Context, profile string, r Record) error {
	f.warn(profile)
	data, err := encode(r)
	if err != nil {
		return err
	}
	return writePrivate(f.Dir, f.path(profile), data, "token file")
}

// writePrivate writes data to path, a file only its owner may read, in
// dir, which it creates (owner only) when missing: the token files and
// the DPoP key files alike. what names the file in errors.
func writePrivate(dir, path string, data []byte, what string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating token directory: %w", err)
	}
	if err := privatefile.ProtectDir(dir); err != nil {
		return fmt.Errorf("securing token directory: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}

// CheckWritable creates the directory and a 0600 file in it, and removes
// the file again.
func (f *File) CheckWritable(ctx context.Context) error {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("creating token directory: %w", err)
	}
	if err := privatefile.ProtectDir(f.Dir); err != nil {
		return fmt.Errorf("securing token directory: %w", err)
	}
	probe, err := os.CreateTemp(f.Dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("can not write in the token directory %s: %w", f.Dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func (f *File) Delete(ctx context.Context, profile string) error {
	err := os.Remove(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// ForProfile returns the store a profile is configured to use.
func ForProfile(p config.Profile, warn io.Writer) (Store, error) {
	switch p.Store {
	case config.StoreFile:
		return NewFile(warn)
	case config.StoreKeychain, "":
		return NewKeychain(), nil
	}
	return nil, fmt.Errorf("unknown store %q", p.Store)
}
