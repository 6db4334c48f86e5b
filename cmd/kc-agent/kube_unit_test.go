package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/privatefile"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"gopkg.in/yaml.v3"
)

func TestExecAPIVersion(t *testing.T) {
	for _, tc := range []struct {
		info, flag, want string
		ok               bool
	}{
		{"", execV1beta1, execV1beta1, true},
		{"", execV1, execV1, true},
		{"", "v2", "", false},
		{`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}`, execV1beta1, execV1, true},
		{`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"cluster":{"server":"https://x"}}}`, execV1, execV1beta1, true},
		{`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}`, execV1, "", false},
		{`{"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"}`, execV1, "", false},
		{`{`, execV1, "", false},
	} {
		got, err := execAPIVersion(tc.info, tc.flag)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("info %q flag %q: %q %v", tc.info, tc.flag, got, err)
		}
	}
}

func FuzzExecAPIVersion(f *testing.F) {
	f.Add(`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{}}`)
	f.Fuzz(func(t *testing.T, info string) {
		v, err := execAPIVersion(info, execV1beta1)
		if err == nil && v != execV1 && v != execV1beta1 {
			t.Fatalf("answered in %q", v)
		}
	})
}

// --merge replaces kc-agent's entries by name and keeps everything else,
// comments included.
func TestMergeKubeconfig(t *testing.T) {
	existing := `# my clusters
apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster:
      server: https://prod.example.com
users:
  - name: admin
    user:
      token: keep-me
  - name: kc-agent
    user:
      exec:
        command: old
current-context: admin@prod
`
	dir := testenv.TempDir(t)
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(existing), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path+string(os.PathListSeparator)+filepath.Join(dir, "other"))
	var out, errb bytes.Buffer
	code := run([]string{"kubeconfig", "--cluster", "prod", "--merge", "--use-context", "--command", "/opt/kc-agent"},
		&IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if out.Len() != 0 || !strings.Contains(errb.String(), "wrote user kc-agent, context kc-agent@prod to "+path) {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	data, _ := os.ReadFile(path)
	var cfg struct {
		Clusters []struct {
			Name string
		}
		Users []struct {
			Name string
			User map[string]any
		}
		Contexts []struct {
			Name    string
			Context struct{ Cluster, User string }
		}
		CurrentContext string `yaml:"current-context"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# my clusters") || len(cfg.Clusters) != 1 || len(cfg.Users) != 2 || cfg.Users[0].User["token"] != "keep-me" {
		t.Fatalf("lost existing entries:\n%s", data)
	}
	exec := cfg.Users[1].User["exec"].(map[string]any)
	if cfg.Users[1].Name != "kc-agent" || exec["command"] != "/opt/kc-agent" || exec["interactiveMode"] != "Never" || exec["apiVersion"] != execV1 {
		t.Fatalf("user entry not replaced:\n%s", data)
	}
	if len(cfg.Contexts) != 1 || cfg.Contexts[0].Name != "kc-agent@prod" || cfg.Contexts[0].Context.User != "kc-agent" || cfg.CurrentContext != "kc-agent@prod" {
		t.Fatalf("context:\n%s", data)
	}
	if err := privatefile.Check(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A file that is not a kubeconfig is left alone.
	os.WriteFile(path, []byte("- a list\n"), 0o600)
	if code := run([]string{"kubeconfig", "--merge"}, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if data, _ := os.ReadFile(path); string(data) != "- a list\n" {
		t.Fatal("a file that is not a kubeconfig was changed")
	}
}
