// Package yamlnode edits YAML mappings in place, so files kc-agent writes
// for the user (its config, a kubeconfig) keep their comments and order.
package yamlnode

import "gopkg.in/yaml.v3"

// Get returns the value of key in the mapping m, or nil.
func Get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Set replaces the value of key in the mapping m, or appends the pair.
func Set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}
