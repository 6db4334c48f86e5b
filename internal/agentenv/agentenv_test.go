package agentenv

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

type vectors struct {
	Cases []struct {
		GOOS string   `json:"goos"`
		Keep []string `json:"keep"`
		Drop []string `json:"drop"`
	} `json:"cases"`
}

// The shared vectors (the Python client runs the same file).
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range v.Cases {
		for _, name := range c.Keep {
			if !Keep(name, c.GOOS) {
				t.Errorf("%s: %s is dropped, want kept", c.GOOS, name)
			}
		}
		for _, name := range c.Drop {
			if Keep(name, c.GOOS) {
				t.Errorf("%s: %s is kept, want dropped", c.GOOS, name)
			}
		}
	}
}

func TestFilterKeepsOrderAndValues(t *testing.T) {
	in := []string{"JUPYTERHUB_API_TOKEN=s3cret", "HOME=/home/a", "=C:=C:\\x", "KC_AGENT_SOCK=/s=1", "AWS_SECRET_ACCESS_KEY=x", "PATH=/bin", "junk"}
	got := Filter(in, "linux")
	want := []string{"HOME=/home/a", "KC_AGENT_SOCK=/s=1", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Fatalf("Filter = %q, want %q", got, want)
	}
}
