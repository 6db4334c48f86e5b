package winacl

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

// Rights another account must not have.
const (
	// Write is what lets someone rewrite, replace or re-permission a file.
	Write = windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA | windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER |
		windows.GENERIC_WRITE | windows.GENERIC_ALL
	// Read is what lets someone read a file's contents.
	Read = windows.FILE_READ_DATA | windows.GENERIC_READ | windows.GENERIC_ALL
)

// ACE types x/sys/windows does not name. A callback entry lays out like
// ACCESS_ALLOWED_ACE.
const (
	systemAuditACEType           = 2
	systemAlarmACEType           = 3
	accessAllowedCallbackACEType = 9
)

// administrators is BUILTIN\Administrators: like SYSTEM, it can take any
// file anyway, and an elevated process's files belong to it.
const administrators = "S-1-5-32-544"

// trusted tells whether sid may hold rights on the user's files.
func trusted(sid, me string) bool {
	return sid == me || sid == winsid.System || sid == administrators
}

// SDDL is the security descriptor of a private file (dir false) or
// directory of the user sid: full access for the user alone, protected
// from inheritance; a directory passes it on to what is created in it.
func SDDL(sid string, dir bool) string {
	if dir {
		return "D:P(A;OICI;FA;;;" + sid + ")"
	}
	return "D:P(A;;FA;;;" + sid + ")"
}

// Protect gives path a protected DACL that grants the current user alone
// full access.
func Protect(path string) error {
	me, err := winsid.Current()
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(SDDL(me, fi.IsDir()))
	if err != nil {
		return fmt.Errorf("building the security descriptor: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("restricting %s to your account: %w", path, err)
	}
	return nil
}

// Error says who else can reach a file.
type Error struct {
	Path string
	// Owner is the file's owner SID when it is the problem.
	Owner string
	// Other is the account an ACL entry grants rights to.
	Other string
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// Check verifies that path belongs to the user (or to SYSTEM or the
// Administrators, who can take it anyway) and that no ACL entry gives any
// other account one of the rights in deny. A missing DACL (everyone may do
// anything) fails.
func Check(path string, deny windows.ACCESS_MASK) error {
	me, err := winsid.Current()
	if err != nil {
		return err
	}
	return check(path, deny, func(sid string) bool { return trusted(sid, me) }, "you")
}

// trustedInstaller is NT SERVICE\TrustedInstaller, which owns what Windows
// itself installs.
const trustedInstaller = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"

// CheckSystem verifies that path belongs to the machine's administrators
// (SYSTEM, the Administrators, TrustedInstaller) and that no ACL entry lets
// anyone else, the user included, change it: for a system-wide file that
// steers every user's tokens.
func CheckSystem(path string) error {
	return check(path, Write, admin, "the Administrators")
}

// admin tells whether sid is one of the machine's administrators.
func admin(sid string) bool {
	return sid == winsid.System || sid == administrators || sid == trustedInstaller
}

// CheckHandle is Check (system false) or CheckSystem (system true) of a
// file already open: what is checked is what will be read, whatever the
// name leads to by now. path is for messages.
func CheckHandle(h windows.Handle, path string, deny windows.ACCESS_MASK, system bool) error {
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the permissions of %s: %w", path, err)
	}
	if system {
		return checkSD(sd, path, Write, admin, "the Administrators")
	}
	me, err := winsid.Current()
	if err != nil {
		return err
	}
	return checkSD(sd, path, deny, func(sid string) bool { return trusted(sid, me) }, "you")
}

func check(path string, deny windows.ACCESS_MASK, trusted func(string) bool, owners string) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the permissions of %s: %w", path, err)
	}
	return checkSD(sd, path, deny, trusted, owners)
}

func checkSD(sd *windows.SECURITY_DESCRIPTOR, path string, deny windows.ACCESS_MASK, trusted func(string) bool, owners string) error {
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return &Error{Path: path, Msg: fmt.Sprintf("%s has no owner kc-agent can read", path)}
	}
	if o := owner.String(); !trusted(o) {
		return &Error{Path: path, Owner: o, Msg: fmt.Sprintf("%s belongs to %s, not to %s", path, winsid.Name(o), owners)}
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		return &Error{Path: path, Other: "Everyone", Msg: fmt.Sprintf("%s has no access list: every account can use it", path)}
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return fmt.Errorf("reading the permissions of %s: %w", path, err)
		}
		if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 || ace.Mask&deny == 0 {
			continue // not for this file, or no right that matters
		}
		switch ace.Header.AceType {
		case windows.ACCESS_DENIED_ACE_TYPE, systemAuditACEType, systemAlarmACEType:
			continue // they take rights away, or only log
		case windows.ACCESS_ALLOWED_ACE_TYPE, accessAllowedCallbackACEType:
		default:
			// Object entries lay their SID out elsewhere; files have none,
			// so one here is a reason to refuse, not to guess.
			return &Error{Path: path, Msg: fmt.Sprintf("%s has an access entry of type %d that kc-agent does not read", path, ace.Header.AceType)}
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String()
		if !trusted(sid) {
			return &Error{Path: path, Other: sid, Msg: fmt.Sprintf("%s gives %s access (mask %#x)", path, winsid.Name(sid), uint32(ace.Mask))}
		}
	}
	return nil
}
