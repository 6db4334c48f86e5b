//go:build unix

package keycloak

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"regexp"
)

// LoginWithCLI runs `kc-agent login --no-browser` and signs in on the URL
// it prints, like a person at a browser would.
func LoginWithCLI(bin, issuer, user, password string) error {
	cmd := exec.Command(bin, "login", issuer, "--no-browser")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	re := regexp.MustCompile(`https?://\S+/protocol/openid-connect/auth\?\S+`)
	sc := bufio.NewScanner(stderr)
	done := make(chan error, 1)
	found := false
	for sc.Scan() {
		if u := re.FindString(sc.Text()); u != "" {
			found = true
			go func() {
				_, err := NewFormBrowser(user, password).Visit(context.Background(), u)
				done <- err
			}()
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if !found {
		cmd.Wait()
		return errors.New("kc-agent login printed no login URL")
	}
	if err := <-done; err != nil {
		return err
	}
	return cmd.Wait()
}
