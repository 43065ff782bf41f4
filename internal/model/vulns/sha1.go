package vulns

import (
	"fmt"
	"strings"
)

// ParseSHA1 parses a .sha1 file: the fix commit ids, one a line, in the
// CNA's order (the first is the one its tooling takes the description and
// programFiles from, and can be a stable-only commit). Blank lines are
// skipped; an empty file gives no commits (rejected records have such
// files). Every other line must be a full 40-digit lowercase SHA-1.
func ParseSHA1(data []byte) ([]string, error) {
	var commits []string
	for n, raw := range splitLines(data) {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if !isFullSHA(line) {
			return nil, fmt.Errorf("line %d: %w %q", n+1, ErrBadCommit, clip(line))
		}
		commits = append(commits, line)
	}
	return commits, nil
}

// ShortCommit is a git commit ID as people read it: its first 12 hex
// digits (an ID that short is given as it is).
func ShortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
