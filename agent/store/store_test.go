package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"

	"github.com/kc-agent/kc-agent/agent/store"
)

func record() store.Record {
	return store.Record{RefreshToken: "rt-secret-value", Issuer: "https://sso.example.com/realms/r", ClientID: "kc-agent", Username: "alice", SavedAt: time.Now().UTC().Round(time.Second)}
}

func roundTrip(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	profile := fmt.Sprintf("test-%d", time.Now().UnixNano())
	if _, err := s.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing profile: got %v, want ErrNotFound", err)
	}
	want := record()
	if err := s.Put(ctx, profile, want); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx, profile)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.RefreshToken != want.RefreshToken || got.Issuer != want.Issuer || !got.SavedAt.Equal(want.SavedAt) {
		t.Fatalf("Get returned a different record: %v", got)
	}
	want.RefreshToken = "rotated"
	if err := s.Put(ctx, profile, want); err != nil {
		t.Fatalf("Put (overwrite): %v", err)
	}
	if got, _ := s.Get(ctx, profile); got.RefreshToken != "rotated" {
		t.Fatal("overwrite did not replace the token")
	}
	if err := s.Delete(ctx, profile); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
}

func TestFileStore(t *testing.T) {
	var warn strings.Builder
	f := &store.File{Dir: filepath.Join(testenv.TempDir(t), "tokens"), Warn: &warn}
	roundTrip(t, f)
	if !strings.Contains(warn.String(), "plain file") {
		t.Fatalf("file store did not warn: %q", warn.String())
	}
	if strings.Contains(warn.String(), "rt-secret-value") {
		t.Fatal("warning leaked the token")
	}
	ctx := context.Background()
	if err := f.Put(ctx, "p", record()); err != nil {
		t.Fatal(err)
	}
	// Read again, as the agent does before each refresh: the user's own
	// file is accepted on every platform.
	if _, err := f.Get(ctx, "p"); err != nil {
		t.Fatalf("reading the user's own token file: %v", err)
	}
	checkFileStoreProtection(t, f)
}

func TestRecordNeverPrintsToken(t *testing.T) {
	r := record()
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r)} {
		if strings.Contains(s, r.RefreshToken) {
			t.Fatalf("formatting a Record printed the token: %s", s)
		}
	}
}

func TestCorruptRecord(t *testing.T) {
	dir := testenv.TempDir(t)
	f := &store.File{Dir: dir}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{not json"), 0o600)
	_, err := f.Get(context.Background(), "bad")
	if err == nil || !strings.Contains(err.Error(), "kc-agent login") {
		t.Fatalf("corrupt record: got %v", err)
	}
}
