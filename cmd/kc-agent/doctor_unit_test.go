package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// After an upgrade from the two-program releases, doctor names a
// kc-agent-core left beside kc-agent or on PATH, and a service definition
// that still runs one, each with what to do.
func TestDoctorFindsTheOldCore(t *testing.T) {
	dir := testenv.TempDir(t)
	bin, other := filepath.Join(dir, "bin"), filepath.Join(dir, "other")
	for _, d := range []string{bin, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(bin, "kc-agent")
	unit := filepath.Join(dir, "kc-agent.service")
	write := func(p, content string) {
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(exe, "")
	write(unit, "[Service]\nExecStart=\""+filepath.Join(bin, "kc-agent")+"\" run\n")
	if got := installChecks(exe, other, unit); len(got) != 0 {
		t.Fatalf("a clean install: %+v", got)
	}

	write(filepath.Join(bin, "kc-agent-core"), "")
	write(filepath.Join(other, "kc-agent-core"), "")
	write(unit, "[Service]\nExecStart=\""+filepath.Join(bin, "kc-agent-core")+"\" run\n")
	got := installChecks(exe, other+string(os.PathListSeparator)+bin, unit)
	var text []string
	for _, c := range got {
		text = append(text, c.status+" "+c.name+": "+c.detail+" / "+c.hint)
	}
	all := strings.Join(text, "\n")
	if len(got) != 3 || !strings.Contains(all, "rm "+filepath.Join(bin, "kc-agent-core")) ||
		!strings.Contains(all, "rm "+filepath.Join(other, "kc-agent-core")) ||
		!strings.Contains(all, "FAIL service definition: "+unit) || !strings.Contains(all, "kc-agent service install") {
		t.Fatalf("got:\n%s", all)
	}
}
