//go:build unix

package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is a real headless Chromium.
type Browser struct {
	path string
	t    testing.TB
}

// Chromium finds Debian's chromium; missing, the test fails under
// KC_AGENT_REQUIRE_CHROMIUM=1 (make test sets it) and skips otherwise.
func Chromium(t testing.TB) *Browser {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return &Browser{path: p, t: t}
		}
	}
	if os.Getenv("KC_AGENT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return nil
}

// SignIn opens url, types the username and password into Keycloak's login
// form, submits it and waits for kc-agent's "Signed in" page (served by
// the CLI's own loopback listener).
func (b *Browser) SignIn(url, user, password string) error {
	return b.With(func(ctx context.Context) error { return b.signIn(ctx, url, user, password) })
}

// With runs f against a fresh headless Chromium (its own profile), for at
// most a minute.
func (b *Browser) With(f func(ctx context.Context) error) error {
	return b.WithFor(60*time.Second, f)
}

// WithFor is With for at most d, in a 1280x900 window (screenshots).
func (b *Browser) WithFor(d time.Duration, f func(ctx context.Context) error) error {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(b.path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(b.t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

func (b *Browser) signIn(ctx context.Context, url, user, password string) error {
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("kc-login")),
		chromedp.WaitVisible(chromedp.ID("kc-agent-done")),
	)
	if err != nil {
		return fmt.Errorf("driving chromium: %w", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("kc-agent-done")))
	if err != nil {
		return fmt.Errorf("reading the page: %w", err)
	}
	if !strings.Contains(body, "Signed in") {
		return fmt.Errorf("chromium ended on a page without \"Signed in\": %.200s", body)
	}
	return nil
}
