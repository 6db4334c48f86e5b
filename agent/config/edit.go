package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
	"github.com/kc-agent/kc-agent/internal/yamlnode"
	"gopkg.in/yaml.v3"
)

// line finds the line of a key path in the document (0 if unknown).
func (c *Config) line(path ...string) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	n := c.root.Content[0]
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func (c *Config) routeLine(i int, field string) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	doc := c.root.Content[0]
	for k := 0; k+1 < len(doc.Content); k += 2 {
		if doc.Content[k].Value != "routes" || doc.Content[k+1].Kind != yaml.SequenceNode {
			continue
		}
		seq := doc.Content[k+1]
		if i >= len(seq.Content) {
			return seq.Line
		}
		item := seq.Content[i]
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == field {
				return item.Content[j].Line
			}
		}
		return item.Line
	}
	return 0
}

// SetProfile adds or replaces a profile, keeping the rest of the document
// (comments included) as it was.
func (c *Config) SetProfile(name string, p Profile) error {
	if !profileName().MatchString(name) {
		return fmt.Errorf("invalid profile name %q: use 1-64 letters, digits, '.', '_' or '-'", name)
	}
	if p.ClientID == DefaultClientID {
		p.ClientID = ""
	}
	if c.own != nil && p.Store == "" && c.own.Store == "" {
		// The system file's default store becomes the profile's own: the
		// token stays findable where it was put if that file goes away.
		p.Store = c.Store
	}
	if p.Store == StoreKeychain {
		p.Store = ""
	}
	if c.Profiles == nil {
		c.Profiles = map[string]Profile{}
	}
	c.Profiles[name] = p
	if c.own != nil {
		// The system-wide file is never written: the profile goes to the
		// user's file, where it overrides the system's of that name.
		c.sources["profile/"+name] = c.own.path
		return c.own.SetProfile(name, p)
	}
	if c.root == nil || len(c.root.Content) == 0 || c.root.Content[0].Kind != yaml.MappingNode {
		c.root = nil
		return nil
	}
	var value yaml.Node
	if err := value.Encode(p); err != nil {
		return err
	}
	doc := c.root.Content[0]
	profiles := yamlnode.Get(doc, "profiles")
	if profiles == nil || profiles.Kind != yaml.MappingNode {
		profiles = &yaml.Node{Kind: yaml.MappingNode}
		yamlnode.Set(doc, "profiles", profiles)
	}
	yamlnode.Set(profiles, name, &value)
	return nil
}

// Save writes the config atomically (temp file + rename), mode 0600.
func (c *Config) Save() error {
	if c.own != nil {
		return c.own.Save()
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	var err error
	if c.root != nil {
		err = enc.Encode(c.root)
	} else {
		err = enc.Encode(c)
	}
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	return atomicfile.Write(c.path, buf.Bytes(), 0o600)
}
