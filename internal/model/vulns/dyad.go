package vulns

import (
	"bytes"
	"fmt"
	"strings"
)

// ParseDyad parses a .dyad file: `#` comment lines and blank lines are
// skipped; every other line is `vulnVer:vulnSHA:fixVer:fixSHA` for one
// branch, where "0" stands for "none" (an unknown introducer, or a branch
// without a fix) and becomes "" in the Branch.
//
// The CNA's tooling writes these files, so anything unexpected is treated as
// corruption rather than guessed at: a version must parse with ParseVersion,
// a commit must be a full 40-digit lowercase SHA-1, and a version and its
// commit are either both "0" or both set. The error names the line number
// and content.
func ParseDyad(data []byte) ([]Branch, error) {
	var branches []Branch
	for n, raw := range splitLines(data) {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		b, err := parseDyadLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w in %q", n+1, err, clip(line))
		}
		branches = append(branches, b)
	}
	return branches, nil
}

func parseDyadLine(line string) (Branch, error) {
	f := strings.Split(line, ":")
	if len(f) != 4 {
		return Branch{}, fmt.Errorf("want 4 colon-separated fields, got %d", len(f))
	}
	iv, ic, err := parseDyadPair(f[0], f[1])
	if err != nil {
		return Branch{}, fmt.Errorf("introduced: %w", err)
	}
	fv, fc, err := parseDyadPair(f[2], f[3])
	if err != nil {
		return Branch{}, fmt.Errorf("fixed: %w", err)
	}
	if iv == "" && fv == "" {
		return Branch{}, fmt.Errorf("neither introduced nor fixed")
	}
	return Branch{IntroducedVersion: iv, IntroducedCommit: ic, FixedVersion: fv, FixedCommit: fc}, nil
}

// parseDyadPair checks one version:commit half of a dyad line. "0:0" is
// none; a version without a commit (or the reverse) is a broken line.
func parseDyadPair(version, commit string) (string, string, error) {
	if version == "0" && commit == "0" {
		return "", "", nil
	}
	if version == "0" || commit == "0" {
		return "", "", fmt.Errorf("version %q with commit %q: both or neither must be 0", version, commit)
	}
	v, err := ParseVersion(version)
	if err != nil {
		return "", "", err
	}
	if !isFullSHA(commit) {
		return "", "", fmt.Errorf("%w %q", ErrBadCommit, clip(commit))
	}
	// Canonical spelling, so "6.1.0" and "6.1" do not become two branches.
	return v.String(), commit, nil
}

// isFullSHA reports whether s is a full SHA-1 commit id in lowercase hex,
// the only form the CNA's machine-written files use.
func isFullSHA(s string) bool {
	return len(s) == 40 && isLowerHex(s)
}

// isLowerHex reports whether s is non-empty lowercase hexadecimal.
func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// splitLines splits data into lines without their "\n" or "\r\n" endings;
// a final line without a newline counts, a final newline starts no line.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	s := string(bytes.TrimSuffix(data, []byte("\n")))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}
