//go:build linux

package wine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hostOnly are packages whose tests are for the host (benchmarks, the
// test harnesses themselves).
func hostOnly(rel string) bool {
	return strings.HasPrefix(rel, "bench/") || strings.HasPrefix(rel, "internal/testenv")
}

type testPackage struct {
	ImportPath, Dir, Rel, Base string
}

func windowsTestPackages(t *testing.T) (root string, pkgs []testPackage) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	root = strings.TrimSpace(string(out))
	list := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}", "./...")
	list.Dir, list.Env = root, windowsGoEnv()
	out, err = list.Output()
	if err != nil {
		t.Fatalf("GOOS=windows go list: %v", err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") {
			continue
		}
		rel, _ := filepath.Rel(root, f[1])
		rel = filepath.ToSlash(rel)
		if hostOnly(rel) {
			continue
		}
		p := testPackage{ImportPath: f[0], Dir: f[1], Rel: rel, Base: filepath.Base(f[1])}
		if other, dup := seen[p.Base]; dup {
			t.Fatalf("%s and %s would both build %s.test.exe", other, rel, p.Base)
		}
		seen[p.Base] = rel
		pkgs = append(pkgs, p)
	}
	return root, pkgs
}

func windowsGoEnv() []string {
	return append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
}

// TestWindowsTestBinaries builds the Windows test binary of every package
// that doesn't need the host (one go test -c) and runs each under Wine,
// with -test.short and -test.v, in the package's directory as go test
// would: one subtest per package, which logs how many tests ran, passed
// and skipped, and fails when the binary fails or when none passed (a
// package whose tests all skip under Wine is not coverage). There is no
// list of known failures: a test that can't work under Wine skips itself
// with the reason, and shows up in the counts.
func TestWindowsTestBinaries(t *testing.T) {
	prefix := Prefix(t)
	root, pkgs := windowsTestPackages(t)
	overlay, err := Overlay(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	args := []string{"test", "-c", "-overlay", overlay, "-o", bins + string(filepath.Separator)}
	for _, p := range pkgs {
		args = append(args, p.ImportPath)
	}
	build := exec.Command("go", args...)
	build.Dir, build.Env = root, windowsGoEnv()
	start := time.Now()
	buildOut, _ := build.CombinedOutput() // a package that doesn't build is reported by its subtest
	t.Logf("built %d Windows test binaries in %s", len(pkgs), time.Since(start).Round(100*time.Millisecond))

	for _, p := range pkgs {
		t.Run(p.Rel, func(t *testing.T) {
			exe := filepath.Join(bins, p.Base+".test.exe")
			if _, err := os.Stat(exe); err != nil {
				t.Fatalf("the tests don't build for windows:\n%s", buildErrors(string(buildOut), p.ImportPath))
			}
			out, err := runUnderWine(prefix, p.Dir, exe, "-test.short", "-test.v", "-test.timeout=2m")
			c := countResults(out)
			t.Logf("%s under Wine: %d ran, %d passed, %d skipped, %d failed", p.Rel, c.ran, c.passed, c.skipped, c.failed)
			for _, s := range c.skips {
				t.Logf("  skipped %s", s)
			}
			if err != nil || c.failed > 0 {
				t.Errorf("under Wine: %v\n%s", err, failures(out, 80))
			}
			if c.passed == 0 {
				t.Errorf("no test of %s passed under Wine (%d ran, %d skipped): a package listed for Wine must run something there", p.Rel, c.ran, c.skipped)
			}
		})
	}
}

// results are the counts of one test binary's -test.v output, top-level
// tests only (subtests are part of their parent's result).
type results struct {
	ran, passed, skipped, failed int
	skips                        []string // "TestX: reason"
}

var resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) `)

func countResults(out string) results {
	var r results
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		m := resultLine.FindStringSubmatch(l)
		if m == nil {
			continue // an indented line is a subtest's
		}
		r.ran++
		switch m[1] {
		case "PASS":
			r.passed++
		case "FAIL":
			r.failed++
		case "SKIP":
			r.skipped++
			// -test.v prints a test's log, the reason to skip included,
			// before its result line.
			why := ""
			if i > 0 && strings.HasPrefix(lines[i-1], "    ") {
				why = strings.TrimSpace(lines[i-1])
			}
			r.skips = append(r.skips, m[2]+": "+why)
		}
	}
	return r
}

// failures is the output around each failed test, or the tail when none
// is marked (a crash, a timeout).
func failures(out string, n int) string {
	lines := strings.Split(out, "\n")
	var keep []string
	for i, l := range lines {
		if strings.Contains(l, "--- FAIL") || strings.HasPrefix(l, "panic:") {
			lo := max(0, i-15)
			keep = append(keep, lines[lo:min(len(lines), i+5)]...)
		}
	}
	if len(keep) == 0 {
		return tail(out, n)
	}
	if len(keep) > 4*n {
		keep = keep[len(keep)-4*n:]
	}
	return strings.Join(keep, "\n")
}

func runUnderWine(prefix, dir, exe string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := Command(ctx, prefix, exe, args...)
	cmd.Dir = dir
	out, err := CombinedOutput(cmd)
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out: %w", err)
	}
	return string(out), err
}

// buildErrors is the part of go test -c's output about importPath.
func buildErrors(out, importPath string) string {
	var keep []string
	on := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "# ") {
			on = strings.Contains(l, importPath)
		}
		if on || strings.Contains(l, importPath) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return tail(out, 30)
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
