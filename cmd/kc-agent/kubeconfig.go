package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/atomicfile"
	"github.com/kc-agent/kc-agent/internal/yamlnode"
	"github.com/kc-agent/kc-agent/ipc"
)

type kubeconfigOptions struct {
	profile     string
	scopes      []string
	tokenType   string
	user        string
	cluster     string
	context     string
	server      string
	caFile      string
	execVersion string
	command     string
	merge       bool
	useContext  bool
	kubeconfig  string
	margin      time.Duration
}

func newKubeconfigCmd(streams *IOStreams) *cobra.Command {
	opts := &kubeconfigOptions{}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print (or --merge) a kubeconfig user that gets its token from kc-agent",
		Long: `Print a kubeconfig with a users: entry whose exec block runs
kc-agent kube-credential (interactiveMode: Never), plus a context when
--cluster is given and a cluster when --server is given. With --merge, write
those entries into the kubeconfig file instead ($KUBECONFIG's first file, else
~/.kube/config), replacing entries of the same name and keeping the rest.

  kc-agent kubeconfig --cluster prod --merge --use-context
  kc-agent kubeconfig --cluster dev --server https://dev.example.com:6443 \
      --certificate-authority dev-ca.pem --merge`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return kubeconfigRun(streams, opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "scopes the token is narrowed to (repeatable)")
	tokenTypeFlag(cmd, &opts.tokenType, "token-type", ipc.TokenTypeID)
	cmd.Flags().StringVar(&opts.user, "user", "", "name of the users: entry (default kc-agent, or kc-agent-<profile>)")
	cmd.Flags().StringVar(&opts.cluster, "cluster", "", "cluster name: also write a context that binds the user to it")
	cmd.Flags().StringVar(&opts.context, "context", "", "context name (default <user>@<cluster>)")
	cmd.Flags().StringVar(&opts.server, "server", "", "API server URL: also write the cluster entry (needs --cluster)")
	cmd.Flags().StringVar(&opts.caFile, "certificate-authority", "", "PEM file with the API server's CA, embedded in the cluster entry")
	cmd.Flags().StringVar(&opts.execVersion, "exec-api-version", execV1, "exec apiVersion: v1 (kubectl 1.22+) or v1beta1 (older kubectl)")
	cmd.Flags().StringVar(&opts.command, "command", "kc-agent", "the kc-agent command kubectl runs (a name on PATH or an absolute path)")
	cmd.Flags().DurationVar(&opts.margin, "expiry-margin", 0, "pass --expiry-margin to kube-credential (0: its default)")
	cmd.Flags().BoolVar(&opts.merge, "merge", false, "write into the kubeconfig file instead of printing")
	cmd.Flags().BoolVar(&opts.useContext, "use-context", false, "with --merge: make the context the current one")
	cmd.Flags().StringVar(&opts.kubeconfig, "kubeconfig", "", "the kubeconfig file --merge writes (default $KUBECONFIG's first file, else ~/.kube/config)")
	return cmd
}

// The kubeconfig entries kc-agent writes, in kubeconfig's field names.
type kubeExec struct {
	APIVersion         string   `yaml:"apiVersion"`
	Command            string   `yaml:"command"`
	Args               []string `yaml:"args"`
	InteractiveMode    string   `yaml:"interactiveMode"`
	ProvideClusterInfo bool     `yaml:"provideClusterInfo"`
	InstallHint        string   `yaml:"installHint"`
}

type kubeUserEntry struct {
	Name string `yaml:"name"`
	User struct {
		Exec kubeExec `yaml:"exec"`
	} `yaml:"user"`
}

type kubeContextEntry struct {
	Name    string `yaml:"name"`
	Context struct {
		Cluster string `yaml:"cluster"`
		User    string `yaml:"user"`
	} `yaml:"context"`
}

type kubeClusterEntry struct {
	Name    string `yaml:"name"`
	Cluster struct {
		Server string `yaml:"server"`
		CAData string `yaml:"certificate-authority-data,omitempty"`
	} `yaml:"cluster"`
}

func kubeconfigRun(streams *IOStreams, opts *kubeconfigOptions) error {
	if err := opts.check(); err != nil {
		return err
	}
	entries, err := opts.entries()
	if err != nil {
		return err
	}
	path := ""
	var data []byte
	if opts.merge {
		if path, err = kubeconfigPath(opts.kubeconfig); err != nil {
			return err
		}
		data, err = os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	out, err := mergeKubeconfig(data, entries, opts.useContext, opts.context)
	if err != nil {
		if path != "" {
			return withHint(fmt.Errorf("%s: %w", path, err), "fix the file, or write a separate one with --kubeconfig")
		}
		return err
	}
	if !opts.merge {
		_, err := streams.Out.Write(out)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Write through a symlink (dotfile managers link ~/.kube/config), not
	// over it.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	// 0600: a kubeconfig may hold other users' credentials.
	if err := atomicfile.Write(path, out, 0o600); err != nil {
		return err
	}
	names := "user " + opts.user
	if opts.cluster != "" {
		names += ", context " + opts.context
	}
	if opts.server != "" {
		names += ", cluster " + opts.cluster
	}
	fmt.Fprintf(streams.Err, "kc-agent: wrote %s to %s\n", names, path)
	return nil
}

// check validates the flags and fills in the defaults that follow from
// them (user and context names).
func (opts *kubeconfigOptions) check() error {
	if err := checkTokenType(opts.tokenType); err != nil {
		return err
	}
	switch opts.execVersion {
	case "v1":
		opts.execVersion = execV1
	case "v1beta1":
		opts.execVersion = execV1beta1
	case execV1, execV1beta1:
	default:
		return usageErr("--exec-api-version must be v1 or v1beta1, not %q", opts.execVersion)
	}
	if opts.server != "" && opts.cluster == "" {
		return usageErr("--server needs --cluster (the name of the cluster entry)")
	}
	if (opts.context != "" || opts.useContext) && opts.cluster == "" {
		return usageErr("--context and --use-context need --cluster")
	}
	if opts.useContext && !opts.merge {
		return usageErr("--use-context works with --merge")
	}
	if opts.user == "" {
		opts.user = "kc-agent"
		if p := config.ProfileName(opts.profile); p != config.DefaultProfile {
			opts.user += "-" + p
		}
	}
	if opts.cluster != "" && opts.context == "" {
		opts.context = opts.user + "@" + opts.cluster
	}
	return nil
}

// entries are the kubeconfig entries to write: the user with its exec
// block, and the context and cluster when asked for.
func (opts *kubeconfigOptions) entries() (map[string]any, error) {
	profile := config.ProfileName(opts.profile)
	user := kubeUserEntry{Name: opts.user}
	args := []string{"kube-credential", "--profile", profile, "--token-type", opts.tokenType}
	for _, s := range opts.scopes {
		args = append(args, "--scope", s)
	}
	if opts.margin > 0 {
		args = append(args, "--expiry-margin", opts.margin.String())
	}
	login := "kc-agent login <issuer-url>"
	if profile != config.DefaultProfile {
		login = "kc-agent login --profile " + profile + " <issuer-url>"
	}
	user.User.Exec = kubeExec{APIVersion: opts.execVersion, Command: opts.command, Args: args, InteractiveMode: "Never",
		InstallHint: "kubectl gets this user's token from kc-agent, the Keycloak credential helper.\n" +
			"Install kc-agent and put it on PATH, then sign in once: " + login + "\n"}
	entries := map[string]any{"users": user}
	if opts.cluster != "" {
		c := kubeContextEntry{Name: opts.context}
		c.Context.Cluster, c.Context.User = opts.cluster, opts.user
		entries["contexts"] = c
	}
	if opts.server != "" {
		c := kubeClusterEntry{Name: opts.cluster}
		c.Cluster.Server = opts.server
		if opts.caFile != "" {
			data, err := os.ReadFile(opts.caFile)
			if err != nil {
				return nil, err
			}
			if b, _ := pem.Decode(data); b == nil {
				return nil, usageErr("%s holds no PEM certificate", opts.caFile)
			}
			c.Cluster.CAData = base64.StdEncoding.EncodeToString(data)
		}
		entries["clusters"] = c
	}
	return entries, nil
}

// kubeconfigPath is where --merge writes: the flag, else $KUBECONFIG's
// first file, else ~/.kube/config.
func kubeconfigPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	for _, p := range filepath.SplitList(os.Getenv("KUBECONFIG")) {
		if p != "" {
			return p, nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// mergeKubeconfig puts the entries (list name → entry with a name) into
// the kubeconfig data, replacing entries of the same name and keeping
// everything else (comments included). Empty data starts a new file.
func mergeKubeconfig(data []byte, entries map[string]any, useContext bool, context string) ([]byte, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	// Only one document is written back: refuse to drop the others.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a kubeconfig: the file holds more than one YAML document")
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 0 || doc.Kind == 0 && len(bytes.TrimSpace(data)) > 0 {
		return nil, errors.New("not a kubeconfig: the file holds no mapping (comments only?); write a separate one with --kubeconfig")
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("not a kubeconfig: the top level is not a mapping")
	}
	setDefault := func(key, value string) {
		if yamlnode.Get(root, key) == nil {
			yamlnode.Set(root, key, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
		}
	}
	setDefault("apiVersion", "v1")
	setDefault("kind", "Config")
	for _, list := range []string{"clusters", "contexts", "users"} {
		e, ok := entries[list]
		if !ok {
			continue
		}
		var n yaml.Node
		if err := n.Encode(e); err != nil {
			return nil, err
		}
		if err := upsertNamed(root, list, &n); err != nil {
			return nil, err
		}
	}
	if useContext {
		yamlnode.Set(root, "current-context", &yaml.Node{Kind: yaml.ScalarNode, Value: context})
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// upsertNamed replaces the entry of list whose name matches entry's, or
// appends entry.
func upsertNamed(root *yaml.Node, list string, entry *yaml.Node) error {
	name := yamlnode.Get(entry, "name").Value
	seq := yamlnode.Get(root, list)
	if seq == nil || seq.Kind == yaml.ScalarNode && (seq.Tag == "!!null" || seq.Value == "") {
		seq = &yaml.Node{Kind: yaml.SequenceNode}
		yamlnode.Set(root, list, seq)
	}
	if seq.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s is not a list", list)
	}
	for i, item := range seq.Content {
		if n := yamlnode.Get(item, "name"); item.Kind == yaml.MappingNode && n != nil && n.Value == name {
			seq.Content[i] = entry
			return nil
		}
	}
	seq.Content = append(seq.Content, entry)
	return nil
}
