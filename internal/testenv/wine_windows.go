package testenv

import (
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/windows"
)

var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// UnderWine tells whether this Windows test binary runs under Wine, whose
// gaps some tests name (see README, "Windows under Wine").
func UnderWine() bool { return underWine() }

// TempDir is t.TempDir, except that under Wine 8, whose os.RemoveAll
// fails (no NtSetInformationFile class 64), the directory is left for the
// harness to remove from the Linux side instead of failing the test.
func TempDir(t testing.TB) string {
	t.Helper()
	if !UnderWine() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "kcw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // best effort
	return dir
}
