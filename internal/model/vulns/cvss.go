package vulns

import (
	"fmt"
	"strings"

	gocvss31 "github.com/pandatix/go-cvss/31"
)

// cvss31Prefix starts every vector the kernel CNA publishes.
const cvss31Prefix = "CVSS:3.1/"

// ParseCVSSVector checks a CVSS 3.1 vector ("CVSS:3.1/AV:L/AC:L/...") and
// computes its base score and severity rating. The score is always computed
// rather than copied from the record, because the CNA derives it from the
// vector too and a vector can arrive before any score does (.cvss files).
func ParseCVSSVector(vector string) (*CVSS, error) {
	vector = strings.TrimSpace(vector)
	if !strings.HasPrefix(vector, cvss31Prefix) {
		return nil, fmt.Errorf("%w %q: want prefix %s", ErrBadVector, clip(vector), cvss31Prefix)
	}
	v, err := gocvss31.ParseVector(vector)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadVector, clip(vector), err)
	}
	score := v.BaseScore()
	severity, err := gocvss31.Rating(score)
	if err != nil {
		return nil, fmt.Errorf("%w %q: rate score %v: %w", ErrBadVector, clip(vector), score, err)
	}
	return &CVSS{Vector: vector, Score: score, Severity: severity}, nil
}

// ParseCVSSFile parses a .cvss file: a header of `<orgId> CVSS:3.1/<vector>`
// lines up to the first blank line (the kernel CNA writes exactly one; with
// several, the first wins and the others must still be valid), then an
// optional rationale. The rationale becomes one Scenarios entry, normalized
// the way the CNA publishes it as metrics[].scenarios[].value: each
// paragraph (one per `KEY:V - …` metric line, or per blank-line-separated
// block of free text) unwrapped onto one line, the lines joined by "\n".
func ParseCVSSFile(data []byte) (*CVSS, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	header, body, _ := strings.Cut(text, "\n\n")
	var first *CVSS
	for n, raw := range strings.Split(header, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		// The orgId says which CNA scored; the kernel CNA's files hold
		// only its own, so it is checked for presence only.
		vector := ""
		if i := strings.IndexAny(line, " \t"); i > 0 {
			vector = strings.TrimSpace(line[i+1:])
		}
		if vector == "" {
			return nil, fmt.Errorf("line %d: want \"<orgId> <vector>\", got %q", n+1, clip(line))
		}
		c, err := ParseCVSSVector(vector)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w: no vector line", ErrBadVector)
	}
	if s := normalizeRationale(body); s != "" {
		first.Scenarios = []string{s}
	}
	return first, nil
}

// normalizeRationale turns a wrapped rationale block into the CNA's
// published scenario text (see ParseCVSSFile).
func normalizeRationale(body string) string {
	lines := dedent(strings.Split(body, "\n"))
	perMetric := false
	for _, l := range lines {
		if isMetricLine(l) {
			perMetric = true
			break
		}
	}
	var paras []string
	var cur []string
	flush := func() {
		if p := strings.Join(strings.Fields(strings.Join(cur, " ")), " "); p != "" {
			paras = append(paras, p)
		}
		cur = cur[:0]
	}
	for _, l := range lines {
		switch {
		case perMetric && isMetricLine(l):
			flush()
		case !perMetric && strings.TrimSpace(l) == "":
			flush()
		}
		cur = append(cur, l)
	}
	flush()
	return strings.Join(paras, "\n")
}

// isMetricLine reports whether an unindented line starts a per-metric
// justification, "AV:L - reachable only ...".
func isMetricLine(l string) bool {
	head, _, ok := strings.Cut(l, "-")
	if !ok {
		return false
	}
	key, value, ok := strings.Cut(strings.TrimRight(head, " \t"), ":")
	if !ok || len(value) != 1 || value[0] < 'A' || value[0] > 'Z' {
		return false
	}
	switch key {
	case "AV", "AC", "PR", "UI", "S", "C", "I", "A":
		return true
	}
	return false
}

// dedent strips the whitespace prefix shared by all non-blank lines, so that
// a rationale indented as a whole (pasted from a commit message) still tells
// continuation lines, which are indented further, from metric lines.
func dedent(lines []string) []string {
	prefix, have := "", false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if !have {
			prefix, have = indent, true
			continue
		}
		i := 0
		for i < len(prefix) && i < len(indent) && prefix[i] == indent[i] {
			i++
		}
		prefix = prefix[:i]
	}
	if prefix == "" {
		return lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimPrefix(l, prefix)
	}
	return out
}
