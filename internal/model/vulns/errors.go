package vulns

import "errors"

// Sentinel errors, wrapped by the parsers so that callers can tell a kind of
// bad data from another with errors.Is.
var (
	// ErrUnknownVersion: a string is not a kernel version ParseVersion knows.
	ErrUnknownVersion = errors.New("unknown version")
	// ErrBadCommit: a commit id is not lowercase hex of the expected length.
	ErrBadCommit = errors.New("bad commit id")
	// ErrBadVector: a CVSS vector is not a valid CVSS 3.1 base vector.
	ErrBadVector = errors.New("bad CVSS vector")
	// ErrMissingJSON: Assemble was given no .json file, which every record
	// in the repository has.
	ErrMissingJSON = errors.New("missing .json file")
	// ErrIDMismatch: a file names another CVE than the one it is filed as.
	ErrIDMismatch = errors.New("cve id mismatch")
	// ErrNotAnnouncement: a mail is not a linux-cve-announce CVE mail.
	ErrNotAnnouncement = errors.New("not a CVE announcement")
)

// RecordError is a problem with one file of one CVE record. Sync reports it
// and skips the record rather than failing the whole run.
type RecordError struct {
	ID   string // CVE-2024-1234
	File string // the file's extension: "json", "dyad", …; "" for the record as a whole
	Err  error
}

// Error reads like `CVE-2024-1234.dyad: line 3: unknown version "6.x"`.
func (e *RecordError) Error() string {
	name := e.ID
	if e.File != "" {
		name += "." + e.File
	}
	if e.Err == nil {
		return name + ": invalid"
	}
	return name + ": " + e.Err.Error()
}

// Unwrap gives the underlying error to errors.Is and errors.As.
func (e *RecordError) Unwrap() error { return e.Err }
