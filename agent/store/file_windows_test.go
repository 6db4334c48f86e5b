package store_test

import (
	"testing"

	"github.com/kc-agent/kc-agent/agent/store"
)

func checkFileStoreProtection(t *testing.T, f *store.File) {}
