//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kc-agent/kc-agent/agent/config"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// defaultJupyterLab is where scripts/install-test-deps.sh installs
// JupyterLab from PyPI (Debian has none); KC_AGENT_JUPYTERLAB overrides.
const defaultJupyterLab = "/opt/kc-agent-jupyterlab/bin/jupyter-lab"

// The notebook the analyst keeps: login() first, then the API through the
// route, then a bare get_token() whose Out[] must not show the token.
var labNotebook = map[string]any{
	"cells": []map[string]any{
		labCell("import kc_agent_client\nkc_agent_client.login(flow=\"device\")"),
		labCell("import json, urllib.request\nr = urllib.request.urlopen(kc_agent_client.route_url(\"warehouse\") + \"/tables\")\nprint(\"route\", r.status, json.load(r)[\"user\"])"),
		labCell("kc_agent_client.get_token()"),
	},
	"metadata":       map[string]any{"kernelspec": map[string]any{"display_name": "Python 3", "language": "python", "name": "python3"}},
	"nbformat":       4,
	"nbformat_minor": 5,
}

func labCell(src string) map[string]any {
	return map[string]any{"cell_type": "code", "execution_count": nil, "metadata": map[string]any{}, "outputs": []any{}, "source": src}
}

// jupyterLab is a running JupyterLab server and the browser page on it.
type jupyterLab struct {
	t         *testing.T
	url       string // the notebook's page, with the token
	dir       string // its root: the .ipynb lives here
	artifacts string
	shots     int
}

func findJupyterLab(t *testing.T) string {
	p := os.Getenv("KC_AGENT_JUPYTERLAB")
	if p == "" {
		p = defaultJupyterLab
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("KC_AGENT_REQUIRE_JUPYTER") == "1" {
			t.Fatalf("JupyterLab not found at %s (scripts/install-test-deps.sh installs it)", p)
		}
		t.Skipf("JupyterLab not found at %s", p)
	}
	return p
}

// startJupyterLab runs JupyterLab on a free port with the notebook in a
// fresh root; its kernels import the client from the source tree and
// inherit the environment (the agent's socket, the profile).
func startJupyterLab(t *testing.T, e *cliEnv, bin string) *jupyterLab {
	dir := t.TempDir()
	raw, _ := json.Marshal(labNotebook)
	if err := os.WriteFile(filepath.Join(dir, "analysis.ipynb"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	home := t.TempDir()
	cmd := exec.Command(bin, "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", "--ServerApp.port="+port, "--ServerApp.port_retries=0",
		"--IdentityProvider.token="+token, "--ServerApp.root_dir="+dir, "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=")
	cmd.Env = append(os.Environ(), "HOME="+home, "JUPYTER_CONFIG_DIR="+filepath.Join(home, "cfg"), "JUPYTER_RUNTIME_DIR="+filepath.Join(home, "rt"),
		"PYTHONPATH="+filepath.Join(repoRoot(t), "clients", "python", "src"), "KC_AGENT_PROFILE="+e.profile)
	logf, _ := os.Create(filepath.Join(home, "jupyter.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Process.Signal(os.Interrupt) // JupyterLab asks to confirm the first
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("jupyter lab log:\n%s", out)
		}
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/api/status?token=" + token)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 300 {
			t.Fatalf("JupyterLab did not answer at %s: %v", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	arts := os.Getenv("KC_AGENT_ARTIFACTS")
	if arts == "" {
		arts = t.TempDir()
	} else {
		arts = filepath.Join(arts, t.Name())
		os.MkdirAll(arts, 0o755)
	}
	return &jupyterLab{t: t, url: base + "/lab/tree/analysis.ipynb?token=" + token, dir: dir, artifacts: arts}
}

// command runs a JupyterLab command by id, as its menu item does, without
// waiting for it to finish (Run All finishes when the cells do).
func (j *jupyterLab) command(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(window.jupyterapp.commands.execute(%q), true)`, id))(ctx, t)
		return err
	})
}

// labBlock is what the page shows of the notebook's first cell.
type labBlock struct {
	Class   string   `json:"class"`   // the sign-in block's classes
	Text    string   `json:"text"`    // its text
	Href    string   `json:"href"`    // its first link
	Cells   []string `json:"cells"`   // every cell's output text
	Ready   bool     `json:"ready"`   // the app and every cell's editor are up
	Prompts []string `json:"prompts"` // every cell's prompt: "[ ]:", "[*]:", "[3]:"
	Kernel  string   `json:"kernel"`  // the notebook's kernel status: idle, busy, ...
}

const labBlockJS = `(() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const b = cells.length ? cells[0].querySelector('.kc-agent-login') : null;
  const a = b ? b.querySelector('a') : null;
  const k = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {ready: !!window.jupyterapp && document.querySelectorAll('.jp-Notebook .jp-Cell .cm-content').length === cells.length,
          prompts: cells.map(c => { const p = c.querySelector('.jp-InputPrompt'); return p ? p.innerText.trim() : ''; }), kernel: k ? k.dataset.status : '', class: b ? b.className : '', text: b ? b.innerText : '', href: a ? a.href : '',
          cells: cells.map(c => { const o = c.querySelector('.jp-OutputArea'); return o ? o.innerText : ''; })};
})()`

// waitFor polls the page until ok says so, then saves a screenshot named
// shot (when not empty) into the artifacts.
func (j *jupyterLab) waitFor(ctx context.Context, what, shot string, ok func(b labBlock) bool) labBlock {
	j.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var b labBlock
	for {
		var err error
		if b, err = chromedp.Run(ctx, chromedp.Evaluate[labBlock](labBlockJS)); err != nil {
			j.t.Fatalf("%s: reading the page: %v", what, err)
		}
		if ok(b) {
			break
		}
		if time.Now().After(deadline) {
			j.screenshot(ctx, "timeout-"+shot)
			j.t.Fatalf("%s: not seen in 90 s; the page shows %+v", what, b)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if shot != "" {
		j.screenshot(ctx, shot)
	}
	return b
}

// within reports whether ok holds on the page within d.
func (j *jupyterLab) within(ctx context.Context, d time.Duration, ok func(b labBlock) bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		b, err := chromedp.Run(ctx, chromedp.Evaluate[labBlock](labBlockJS))
		if err == nil && ok(b) {
			return true
		}
	}
	return false
}

func (j *jupyterLab) screenshot(ctx context.Context, name string) {
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		j.t.Logf("screenshot %s: %v", name, err)
		return
	}
	j.shots++
	path := filepath.Join(j.artifacts, fmt.Sprintf("%02d-%s.png", j.shots, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		j.t.Logf("screenshot %s: %v", name, err)
	}
}

func hasClass(b labBlock, c string) bool { return strings.Contains(" "+b.Class+" ", " "+c+" ") }

var userCodeRE = regexp.MustCompile(`user_code=([A-Z0-9-]+)`)

// A real JupyterLab in headless Chromium, as an analyst uses it: the
// notebook starts with login() and is run with Run All. Signed in once,
// Run All again starts no sign-in and reaches the route as the user.
// Kernel -> Interrupt during a sign-in leaves one line (no traceback
// through the client) and a block that says the sign-in is still open
// until when, without its code; login() again picks it up. A restarted
// kernel picks up the open sign-in too. The saved notebook holds no
// token, no user id, no e-mail and no code of an ended sign-in.
// Screenshots of each state go to the artifacts ($KC_AGENT_ARTIFACTS).
func TestJupyterLabNotebook(t *testing.T) {
	testenv.SecretService(t)
	bin := findJupyterLab(t)
	chromium := testenv.Chromium(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	kc := e.keycloak()
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	cfgPath, _ := config.FilePath()
	data, _ := os.ReadFile(cfgPath)
	extra := fmt.Sprintf("routes:\n  - name: warehouse\n    upstream: %s/v1\n    profile: %s\nproxy:\n  listen: %s\n  ca_file: %s\n",
		rs.URL, e.profile, freeAddr(t), ca.PEMPath)
	if err := os.WriteFile(cfgPath, append(data, []byte(extra)...), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := e.startAgent()
	started := func() int { return strings.Count(agent.log.String(), "sign-in started") }
	lab := startJupyterLab(t, e, bin)
	var codes []string
	pendingWith := func(note bool) func(b labBlock) bool {
		return func(b labBlock) bool {
			return hasClass(b, "kc-agent-pending") && userCodeRE.MatchString(b.Href) && (!note || strings.Contains(b.Text, "picked up the sign-in"))
		}
	}
	approve := func(b labBlock) {
		t.Helper()
		codes = append(codes, userCodeRE.FindStringSubmatch(b.Href)[1])
		if err := approveDevice(keycloak.NewFormBrowser("carol", "carol-pw"), b.Href); err != nil {
			t.Fatal(err)
		}
	}
	ranAsCarol := func(b labBlock) bool {
		return len(b.Cells) == 3 && strings.Contains(b.Cells[1], "route 200 carol") && strings.Contains(b.Cells[2], "<access token for carol, expires ")
	}
	signedIn := func(b labBlock) bool { return hasClass(b, "kc-agent-done") && ranAsCarol(b) }
	err := chromium.WithFor(170*time.Second, func(ctx context.Context) error {
		runAll := func() {
			t.Helper()
			// Cells sent before the kernel is connected are dropped.
			lab.waitFor(ctx, "an idle kernel", "", func(b labBlock) bool { return b.Kernel == "idle" })
			for try := 0; ; try++ {
				if err := chromedp.Do(ctx, lab.command("notebook:clear-all-cell-outputs"), lab.command("notebook:run-all-cells")); err != nil {
					t.Fatal(err)
				}
				// Every cell queued or run. Under load a freshly opened
				// notebook has dropped the later cells of its first Run
				// All; the UI action is repeated then, never an assertion.
				if try == 1 || lab.within(ctx, 10*time.Second, func(b labBlock) bool {
					return len(b.Prompts) == 3 && !slices.Contains(b.Prompts, "[ ]:")
				}) {
					return
				}
				t.Log("Run All left cells unqueued; Run All again")
			}
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(lab.url)); err != nil {
			return err
		}
		// (chromedp's WaitVisible can hang on JupyterLab's page: poll.)
		lab.waitFor(ctx, "the notebook", "", func(b labBlock) bool { return b.Ready && len(b.Cells) == 3 })

		// The first morning: sign in.
		runAll()
		approve(lab.waitFor(ctx, "the sign-in block", "pending", pendingWith(false)))
		b := lab.waitFor(ctx, "signed in, the route as carol", "done", signedIn)
		if strings.Contains(b.Cells[0], "@") || !strings.Contains(b.Cells[0], "<signed in as carol, profile ") {
			t.Errorf("login()'s Out[] shows more than the user name: %q", b.Cells[0])
		}
		// The next mornings: nothing to do.
		for i := 0; i < 2; i++ {
			t0 := time.Now()
			runAll()
			b = lab.waitFor(ctx, "Run All when signed in", "signed-in", func(b labBlock) bool { return hasClass(b, "kc-agent-signed-in") && ranAsCarol(b) })
			t.Logf("Run All when signed in: %v until the last cell showed its output", time.Since(t0).Round(time.Millisecond))
			if !strings.HasPrefix(b.Text, "✓ Signed in as carol") {
				t.Errorf("the quiet line: %q", b.Text)
			}
		}
		if n := started(); n != 1 {
			t.Errorf("%d sign-ins started for three Run Alls, want 1", n)
		}

		// Signed out; the sign-in is interrupted, then picked up.
		if code, _, stderr := e.run("logout", "--profile", e.profile); code != 0 {
			t.Fatalf("logout: %s", stderr)
		}
		runAll()
		b = lab.waitFor(ctx, "a new sign-in", "pending-again", pendingWith(false))
		code := userCodeRE.FindStringSubmatch(b.Href)[1]
		// The notebook's own interrupt (its toolbar's stop button, I I): the
		// Kernel menu's item acts on the focused widget, and a headless
		// page has none.
		if err := chromedp.Do(ctx, lab.command("notebook:interrupt-kernel")); err != nil {
			return err
		}
		b = lab.waitFor(ctx, "the interrupted block", "interrupted", func(b labBlock) bool {
			return hasClass(b, "kc-agent-still_open") && strings.Contains(b.Cells[0], "LoginInterrupted")
		})
		out := b.Cells[0]
		if !regexp.MustCompile(`Sign-in still open until \d\d:\d\d`).MatchString(b.Text) || !strings.Contains(b.Text, "login(cancel=True)") ||
			b.Href != "" || strings.Contains(out, code) {
			t.Errorf("the interrupted block: %q (link %q)", b.Text, b.Href)
		}
		if !strings.Contains(out, "LoginInterrupted: stopped waiting; the sign-in is still open until") ||
			strings.Contains(out, "Traceback") || strings.Contains(out, "kc_agent_client") || strings.Contains(out, ".py") {
			t.Errorf("the interrupt's output is not one short line:\n%s", out)
		}
		runAll()
		b = lab.waitFor(ctx, "login() picks the sign-in up again", "picked-up", pendingWith(true))
		if started() != 2 || !strings.Contains(b.Href, code) {
			t.Errorf("after the interrupt: %d sign-ins started (want 2), link %s (want code %s)", started(), b.Href, code)
		}
		approve(b)
		lab.waitFor(ctx, "signed in after the interrupt", "done-after-interrupt", signedIn)

		// Signed out; the kernel restarts during the sign-in.
		if code, _, stderr := e.run("logout", "--profile", e.profile); code != 0 {
			t.Fatalf("logout: %s", stderr)
		}
		runAll()
		lab.waitFor(ctx, "a third sign-in", "", pendingWith(false))
		if err := chromedp.Do(ctx, lab.command("notebook:restart-kernel"), chromedp.Click(chromedp.CSS(".jp-Dialog .jp-mod-accept"))); err != nil {
			return err
		}
		runAll()
		approve(lab.waitFor(ctx, "the new kernel picks the sign-in up", "restarted-picked-up", pendingWith(true)))
		lab.waitFor(ctx, "signed in after the restart", "done-after-restart", signedIn)
		if n := started(); n != 3 {
			t.Errorf("%d sign-ins started, want 3", n)
		}
		// File -> Save acts on the focused widget too: save the
		// notebook's document context, as that command does.
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(async () => {
  const w = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === 'analysis.ipynb');
  await w.context.save();
  return true;
})()`, chromedp.EvalAwaitPromise))
		return err
	})
	if err != nil {
		t.Fatalf("driving JupyterLab: %v", err)
	}
	checkSavedNotebook(t, e, filepath.Join(lab.dir, "analysis.ipynb"), codes)
	t.Logf("screenshots in %s", lab.artifacts)
}

// checkSavedNotebook reads the saved .ipynb (once the save landed): the
// final block is there, and nothing secret, personal or still usable.
func checkSavedNotebook(t *testing.T, e *cliEnv, path string, codes []string) {
	var raw []byte
	for i := 0; i < 100; i++ {
		raw, _ = os.ReadFile(path)
		if strings.Contains(string(raw), "kc-agent-done") && strings.Contains(string(raw), "route 200 carol") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.record(string(raw)) // the token leak check reads it too
	saved := string(raw)
	if !strings.Contains(saved, "Signed in as carol") {
		t.Fatalf("the saved notebook lacks the final block:\n%s", saved)
	}
	rec, err := e.stored()
	if err != nil || rec.Subject == "" {
		t.Fatalf("stored: %v", err)
	}
	if m := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`).FindString(saved); m != "" {
		t.Errorf("the saved notebook holds a JWT (%d characters)", len(m))
	}
	if strings.Contains(saved, rec.Subject) || strings.Contains(saved, "carol@example.com") {
		t.Errorf("the saved notebook holds carol's user id or e-mail")
	}
	for _, c := range codes {
		if strings.Contains(saved, c) {
			t.Errorf("the saved notebook holds the ended sign-in's code %s", c)
		}
	}
	if len(codes) != 3 {
		t.Errorf("approved %d sign-ins, want 3", len(codes))
	}
}
