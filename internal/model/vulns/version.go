package vulns

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Version is a released kernel version as the CNA writes it: a mainline
// release ("6.13", "2.6.12"), a mainline release candidate ("6.13-rc1"), or
// a stable release ("6.1.129", "2.6.32.19").
//
// Kernels before 3.0 numbered mainline releases with three parts and their
// stable releases with four ("2.6.32" and "2.6.32.19"); since 3.0 mainline
// has two parts and stable three. Version models both, so that a stable
// branch is always "the mainline release it forked from" and Compare orders
// 2.6.39.4 before 3.0.
//
// The zero Version is not a valid version; IsZero reports it. Versions are
// comparable with ==: ParseVersion normalizes, so equal versions are equal
// values.
type Version struct {
	major, minor uint32
	// sub is the third number of a pre-3.0 mainline release (the 32 of
	// 2.6.32); always 0 from 3.0 on.
	sub uint32
	// stable is the stable patch level (6.1.129 → 129), 0 for mainline.
	stable uint32
	// rc is the release candidate number (6.13-rc1 → 1), 0 for a release.
	rc uint32
}

// maxVersionDigits bounds each number so that parsing never overflows and a
// garbage string cannot pass as a version.
const maxVersionDigits = 6

// ParseVersion parses a kernel version: "6.1.129", "6.13", "6.13-rc1",
// "2.6.12", "2.6.32.19", "2.6.39-rc1". A ".0" stable level ("6.1.0", as
// uname reports a mainline kernel) means the mainline release and parses as
// "6.1". Anything else, including "6.1.x", "6.1-rc0", leading zeros, stable
// release candidates ("6.1.5-rc1") and "", is an error wrapping
// ErrUnknownVersion.
func ParseVersion(s string) (Version, error) {
	fail := func() (Version, error) {
		return Version{}, fmt.Errorf("%w %q", ErrUnknownVersion, clip(s))
	}
	base, rcText, hasRC := strings.Cut(s, "-rc")
	var v Version
	if hasRC {
		rc, ok := parseVersionNumber(rcText)
		if !ok || rc == 0 {
			return fail()
		}
		v.rc = rc
	}
	parts := strings.Split(base, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return fail()
	}
	nums := make([]uint32, len(parts))
	for i, p := range parts {
		n, ok := parseVersionNumber(p)
		if !ok {
			return fail()
		}
		nums[i] = n
	}
	v.major, v.minor = nums[0], nums[1]
	if v.major == 0 {
		return fail()
	}
	// mainlineParts is how many numbers name a mainline release in this
	// era; one more is the stable level.
	mainlineParts := 2
	if v.major < 3 {
		mainlineParts = 3
		if len(nums) < 3 {
			return fail()
		}
		v.sub = nums[2]
	}
	switch len(nums) {
	case mainlineParts:
	case mainlineParts + 1:
		if v.rc != 0 {
			return fail() // stable releases have no -rc tags
		}
		v.stable = nums[mainlineParts]
	default:
		return fail()
	}
	return v, nil
}

// parseVersionNumber accepts a decimal number without sign or leading zeros,
// so that String gives back what was parsed.
func parseVersionNumber(s string) (uint32, bool) {
	if s == "" || len(s) > maxVersionDigits || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// IsZero reports whether v is the zero Version (not a parsed version).
func (v Version) IsZero() bool { return v == Version{} }

// IsMainline reports whether v is a mainline release or release candidate
// ("6.8", "6.13-rc1", "2.6.12"), not a stable release ("6.1.129").
func (v Version) IsMainline() bool { return v.stable == 0 }

// IsRC reports whether v is a mainline release candidate ("6.13-rc1").
func (v Version) IsRC() bool { return v.rc != 0 }

// Branch names the stable branch v belongs to: the mainline release it
// forked from ("6.1" for 6.1.129 and for 6.1; "6.13" for 6.13-rc1, which
// precedes that branch; "2.6.32" for 2.6.32.19). Two versions are on the
// same stable line exactly when their Branch strings are equal.
func (v Version) Branch() string {
	if v.major < 3 {
		return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.sub)
	}
	return fmt.Sprintf("%d.%d", v.major, v.minor)
}

// String gives the canonical spelling, which ParseVersion accepts and maps
// back to v. The zero Version gives "".
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	var b strings.Builder
	b.WriteString(v.Branch())
	if v.stable != 0 {
		fmt.Fprintf(&b, ".%d", v.stable)
	}
	if v.rc != 0 {
		fmt.Fprintf(&b, "-rc%d", v.rc)
	}
	return b.String()
}

// Compare orders versions as the kernel releases them: 6.13-rc1 < 6.13-rc2
// < 6.13 < 6.13.1 < 6.14-rc1, and 2.6.39.4 < 3.0. It returns -1, 0 or +1.
func (v Version) Compare(w Version) int {
	a, b := v.key(), w.key()
	for i := range a {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return 0
}

// key lays v out so that comparing keys element by element orders releases:
// a release candidate sorts before its release, which sorts before its
// stable releases.
func (v Version) key() [5]uint64 {
	rc := uint64(math.MaxUint64)
	if v.rc != 0 {
		rc = uint64(v.rc)
	}
	return [5]uint64{uint64(v.major), uint64(v.minor), uint64(v.sub), rc, uint64(v.stable)}
}

// MarshalText implements encoding.TextMarshaler, so stores and JSON output
// carry the canonical string.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseVersion.
func (v *Version) UnmarshalText(text []byte) error {
	p, err := ParseVersion(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// clip shortens s for an error message, so that a fuzzed or corrupt input
// cannot produce a megabyte-long error.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
