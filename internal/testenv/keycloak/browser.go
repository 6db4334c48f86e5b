//go:build unix

package keycloak

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// FormBrowser fills Keycloak's login and consent pages over plain HTTP,
// keeping cookies like a browser would. It stops at a loopback /callback
// redirect and requests it, so kc-agent's own listener receives the code.
type FormBrowser struct {
	User, Password string
	// Deny presses "No" on the consent page instead of "Yes".
	Deny bool
	// HoldCallback stops at the redirect to the loopback /callback and
	// returns its URL (Result.URL, Status 302) without requesting it, so
	// a test can deliver it from another process.
	HoldCallback bool
	hc           *http.Client
}

// ErrBadCredentials is returned when Keycloak shows the login form again.
var ErrBadCredentials = errors.New("keycloak rejected the username or password")

// NewFormBrowser returns a browser that signs in as user.
func NewFormBrowser(user, password string) *FormBrowser {
	jar, _ := cookiejar.New(nil)
	return &FormBrowser{User: user, Password: password, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var (
	formRe   = regexp.MustCompile(`(?is)<form[^>]*>.*?</form>`)
	actionRe = regexp.MustCompile(`(?is)action="([^"]*)"`)
	inputRe  = regexp.MustCompile(`(?is)<input[^>]*>`)
	attrRe   = regexp.MustCompile(`(?is)\b(name|value|type)="([^"]*)"`)
)

type form struct {
	raw    string
	action string
	fields url.Values
}

func parseForms(page string) []form {
	var forms []form
	for _, raw := range formRe.FindAllString(page, -1) {
		f := form{raw: raw, fields: url.Values{}}
		if m := actionRe.FindStringSubmatch(raw); m != nil {
			f.action = html.UnescapeString(m[1])
		}
		for _, in := range inputRe.FindAllString(raw, -1) {
			var name, value, typ string
			for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
				switch strings.ToLower(a[1]) {
				case "name":
					name = html.UnescapeString(a[2])
				case "value":
					value = html.UnescapeString(a[2])
				case "type":
					typ = strings.ToLower(a[2])
				}
			}
			if name != "" && typ != "submit" {
				f.fields.Set(name, value)
			}
		}
		forms = append(forms, f)
	}
	return forms
}

// Result is where the browser ended.
type Result struct {
	URL    string
	Status int
	Body   string
}

// Visit opens url and works through login and consent pages until it
// reaches a page that is neither (a callback answer, the device status page).
func (b *FormBrowser) Visit(ctx context.Context, start string) (*Result, error) {
	method, target, body := http.MethodGet, start, url.Values(nil)
	loggedIn := false
	for step := 0; step < 20; step++ {
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(body.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.hc.Do(req)
		if err != nil {
			return nil, err
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		page := string(data)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := resp.Location()
			if err != nil {
				return nil, err
			}
			if b.HoldCallback && loc.Scheme == "http" && loc.Hostname() == "127.0.0.1" && loc.Path == "/callback" {
				return &Result{URL: loc.String(), Status: resp.StatusCode}, nil
			}
			method, target, body = http.MethodGet, loc.String(), nil
			continue
		}
		forms := parseForms(page)
		if f, ok := findForm(forms, `id="kc-form-login"`); ok {
			if loggedIn {
				return nil, ErrBadCredentials
			}
			loggedIn = true
			f.fields.Set("username", b.User)
			f.fields.Set("password", b.Password)
			f.fields.Del("rememberMe")
			method, target, body = http.MethodPost, resolve(target, f.action), f.fields
			continue
		}
		if f, ok := findForm(forms, `name="accept"`); ok {
			if b.Deny {
				f.fields.Set("cancel", "No")
			} else {
				f.fields.Set("accept", "Yes")
			}
			method, target, body = http.MethodPost, resolve(target, f.action), f.fields
			continue
		}
		return &Result{URL: target, Status: resp.StatusCode, Body: page}, nil
	}
	return nil, fmt.Errorf("too many steps through the login pages, last at %s", target)
}

func findForm(forms []form, marker string) (form, bool) {
	for _, f := range forms {
		if strings.Contains(f.raw, marker) {
			return f, true
		}
	}
	return form{}, false
}

func resolve(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}
