package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/kc-agent/kc-agent/internal/idptext"
)

// browserAvailable tells whether `login` can open a browser the user sees.
func browserAvailable() bool {
	if os.Getenv("BROWSER") != "" {
		return true
	}
	if os.Getenv("SSH_CONNECTION") != "" || os.Getenv("SSH_TTY") != "" {
		return false
	}
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return false
	}
	_, err := exec.LookPath("xdg-open")
	return err == nil
}

// openBrowser opens url with $BROWSER (a list of commands separated like
// PATH, by ':' or, on Windows, ';'; %s stands for the URL) or the
// platform's opener.
func openBrowser(url string) error {
	if b := os.Getenv("BROWSER"); b != "" {
		var errs []error
		for _, args := range browserCommands(b, url, os.PathListSeparator, fileExists) {
			cmd := exec.Command(args[0], args[1:]...)
			if err := cmd.Start(); err != nil {
				errs = append(errs, err)
				continue
			}
			go cmd.Wait()
			return nil
		}
		return fmt.Errorf("$BROWSER: %w", errors.Join(errs...))
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// showDeviceCode prints the device flow instructions and a QR code of the
// complete verification URL.
func showDeviceCode(w io.Writer, uri, code, complete string) {
	// The agent cleans these already; an older one may not have.
	uri, code, complete = idptext.Printable(uri), idptext.Printable(code), idptext.Printable(complete)
	fmt.Fprintf(w, "kc-agent: to sign in, open %s on any device and enter the code:\n\n    %s\n\n", uri, code)
	if complete != "" {
		if qr := renderQR(complete); qr != "" {
			fmt.Fprintf(w, "or scan this code with a phone:\n\n%s\n", qr)
		}
		fmt.Fprintf(w, "or open %s\n\n", complete)
	}
	fmt.Fprintln(w, "kc-agent: waiting for the approval (Ctrl-C to cancel)")
}

// renderQR draws a QR code with half blocks (two modules per character
// cell), dark on light, so phones read it on dark and light terminals.
func renderQR(text string) string {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return ""
	}
	return q.ToSmallString(true)
}

// browserCommands splits $BROWSER into commands, each with url in place of
// %s (or appended). Entries are separated by sep, as in PATH (a Windows
// path has a ':' after its drive letter); an entry that names an existing
// file is one program, spaces and all ("C:\Program Files\...").
func browserCommands(b, url string, sep rune, exists func(string) bool) [][]string {
	var out [][]string
	for _, c := range strings.Split(b, string(sep)) {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		args := strings.Fields(c)
		if exists(c) {
			args = []string{c}
		}
		found := false
		for i, a := range args {
			if strings.Contains(a, "%s") {
				args[i] = strings.ReplaceAll(a, "%s", url)
				found = true
			}
		}
		if !found {
			args = append(args, url)
		}
		out = append(out, args)
	}
	return out
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
