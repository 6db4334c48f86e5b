//go:build linux

package wine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// knownFailures are the Windows unit tests that fail under Wine today, by
// package (relative to the module) and test name, with the reason. The
// empty name stands for the whole package (its tests don't build for
// windows). They are kept out of the main run and run on their own: one
// that passes fails this test, so that the list only ever shrinks.
var knownFailures = map[string]map[string]string{
	"agent/oidc": {
		"TestDiscoveryRefusesForeignEndpoints": noOwner,
	},
	"agent/proxy": {
		"TestReverseRouteCookies":                      noOwner,
		"TestReverseRouteInjectsAndSandboxes":          noOwner,
		"TestForwardPlainHTTPNeedsIntercept":           noOwner,
		"TestBrowserModel":                             noOwner,
		"TestReconfigureKeepsOldOnFailure":             noOwner,
		"TestCleartextLoopbackWhereOwnersAreInvisible": noOwner,
		"TestForwardTokenOnlyUnderBasePath":            noOwner,
		"TestUpstreamProxyNeverCarriesCleartext":       noOwner,
		"TestTwoListenersOnPortZero":                   noOwner,
		"TestRouteRefusesAnotherAccount":               noOwner,
	},
}

// noOwner: the test's plain-http upstream or issuer is an httptest server
// on loopback, and under Wine 8 GetExtendedTcpTable names no owning
// process for a listening socket (PID 0), not even the test's own; the
// loopback cleartext check then refuses it (502, or "kc-agent did not
// contact the issuer"). Windows names these owners; that was not run here.
const noOwner = "Wine 8 names no owner for a listening loopback socket, so the cleartext check refuses the test's http upstream"

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
	for rel := range knownFailures {
		if _, ok := seen[filepath.Base(rel)]; !ok {
			t.Errorf("knownFailures names %s, which has no Windows tests", rel)
		}
	}
	return root, pkgs
}

func windowsGoEnv() []string {
	return append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
}

// TestWindowsTestBinaries builds the Windows test binary of every package
// that doesn't need the host (one go test -c) and runs each under Wine,
// with -test.short, in the package's directory as go test would: one
// subtest per package.
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
			known := knownFailures[p.Rel]
			exe := filepath.Join(bins, p.Base+".test.exe")
			why, knownBroken := known[""]
			if _, err := os.Stat(exe); err != nil {
				if knownBroken {
					t.Skipf("known: the tests don't build for windows: %s", why)
				}
				t.Fatalf("the tests don't build for windows:\n%s", buildErrors(string(buildOut), p.ImportPath))
			}
			if knownBroken {
				t.Errorf("the tests build for windows now: take %s off knownFailures (internal/testenv/wine/unit_test.go)", p.Rel)
			}
			var names []string
			for name := range known {
				if name != "" {
					names = append(names, regexp.QuoteMeta(name))
				}
			}
			sort.Strings(names)
			only := "^(" + strings.Join(names, "|") + ")$"
			runArgs := []string{"-test.short", "-test.timeout=2m"}
			if len(names) > 0 {
				runArgs = append(runArgs, "-test.skip="+only)
			}
			out, err := runUnderWine(prefix, p.Dir, exe, runArgs...)
			if err != nil {
				t.Errorf("under Wine: %v\n%s", err, tail(out, 60))
			}
			if len(names) == 0 {
				return
			}
			out, _ = runUnderWine(prefix, p.Dir, exe, "-test.short", "-test.timeout=2m", "-test.v", "-test.run="+only)
			for name, why := range known {
				switch {
				case name == "":
				case strings.Contains(out, "--- PASS: "+name+" "):
					t.Errorf("%s passes under Wine now: take it off knownFailures (internal/testenv/wine/unit_test.go)", name)
				case strings.Contains(out, "--- FAIL: "+name+" "):
					t.Logf("known failure %s: %s", name, why)
				default:
					t.Errorf("%s did not run (renamed?); knownFailures says: %s", name, why)
				}
			}
		})
	}
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
