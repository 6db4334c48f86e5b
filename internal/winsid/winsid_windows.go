package winsid

import (
	"fmt"
	"sync"

	"golang.org/x/sys/windows"
)

// System is the LocalSystem account, which can read every user's secrets
// anyway (as root can on Unix).
const System = "S-1-5-18"

var current = sync.OnceValues(func() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("reading this process's user: %w", err)
	}
	return u.User.Sid.String(), nil
})

// Current is the SID of the user this process runs as.
func Current() (string, error) { return current() }

// OfProcess is the SID of the user the process pid runs as. It is the one
// lookup behind every "is that process this user's?" (both ends of the
// pipe, the proxy's callers, service stop); tests replace it to play
// another account, which Wine, with its one account, can not provide.
var OfProcess = ofProcess

func ofProcess(pid uint32) (string, error) {
	if pid == 0 {
		return "", fmt.Errorf("no process id")
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return "", fmt.Errorf("opening process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return "", fmt.Errorf("opening the token of process %d: %w", pid, err)
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("reading the user of process %d: %w", pid, err)
	}
	return u.User.Sid.String(), nil
}

// Name is "DOMAIN\user" for sid when the account can be looked up, else
// sid itself: for messages.
func Name(sid string) string {
	s, err := windows.StringToSid(sid)
	if err != nil {
		return sid
	}
	acct, dom, _, err := s.LookupAccount("")
	if err != nil {
		return sid
	}
	if dom != "" {
		return dom + `\` + acct
	}
	return acct
}
