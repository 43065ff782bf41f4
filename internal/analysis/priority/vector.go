package priority

import (
	"strconv"
	"strings"
)

// vector holds the base metrics of a CVSS 3.1 vector, one letter each
// (0 when absent). The vulns parser has validated the vector already; a
// hand-made record with a broken one just gets no nudges.
type vector struct {
	av, ac, pr, ui, s, c, i, a byte
}

func parseVector(s string) vector {
	var v vector
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, "/")
		key, val, ok := strings.Cut(part, ":")
		if !ok || len(val) != 1 {
			continue // the "CVSS:3.1" prefix, or junk
		}
		switch key {
		case "AV":
			v.av = val[0]
		case "AC":
			v.ac = val[0]
		case "PR":
			v.pr = val[0]
		case "UI":
			v.ui = val[0]
		case "S":
			v.s = val[0]
		case "C":
			v.c = val[0]
		case "I":
			v.i = val[0]
		case "A":
			v.a = val[0]
		}
	}
	return v
}

// nudge is the points added to 6 × the base score (see the package
// comment for why).
func (v vector) nudge() float64 {
	var p float64
	switch v.av {
	case 'N':
		p += 4
	case 'A':
		p += 2
	case 'P':
		p -= 4
	}
	switch v.pr {
	case 'N':
		p += 2
	case 'H':
		p -= 5
	}
	if v.ui == 'R' {
		p -= 2
	}
	if v.s == 'C' {
		p += 2
	}
	return p
}

// cvssReason reads like "CNA CVSS 7.8 (AV:L/PR:L): local, low privileges".
// Metrics at their usual kernel values (AC:L, UI:N, S:U, all impacts
// high) are left out.
func cvssReason(score float64, v vector) string {
	b := make([]byte, 0, 96)
	b = append(b, "CNA CVSS "...)
	b = strconv.AppendFloat(b, score, 'f', 1, 64)
	var words [6]string
	n, sep := 0, " ("
	add := func(key string, val byte, word string) {
		b = append(b, sep...)
		b = append(b, key...)
		b = append(b, ':', val)
		sep = "/"
		words[n] = word
		n++
	}
	switch v.av {
	case 'N':
		add("AV", v.av, "network")
	case 'A':
		add("AV", v.av, "adjacent network")
	case 'L':
		add("AV", v.av, "local")
	case 'P':
		add("AV", v.av, "physical")
	}
	if v.ac == 'H' {
		add("AC", v.ac, "hard to trigger")
	}
	switch v.pr {
	case 'N':
		add("PR", v.pr, "no privileges")
	case 'L':
		add("PR", v.pr, "low privileges")
	case 'H':
		add("PR", v.pr, "high privileges")
	}
	if v.ui == 'R' {
		add("UI", v.ui, "needs user interaction")
	}
	if v.s == 'C' {
		add("S", v.s, "changes scope")
	}
	if n > 0 {
		b = append(b, ')')
	}
	switch {
	case v.c == 'N' && v.i == 'N' && v.a != 'N':
		words[n] = "denial of service only"
		n++
	case v.i == 'N' && v.c != 'N':
		words[n] = "no integrity impact"
		n++
	}
	for k, w := range words[:n] {
		if k == 0 {
			b = append(b, ": "...)
		} else {
			b = append(b, ", "...)
		}
		b = append(b, w...)
	}
	return string(b)
}

// feature is one thing a CNA rationale says that the vector does not.
type feature struct {
	points float64
	reason string
}

// Scenario features. The rationale is one paragraph per metric, "PR:L -
// …" (ParseCVSSFile's normal form), in nearly every scored record.
var (
	featUserNS = feature{5, "reachable from an unprivileged user namespace"}
	featWild   = feature{8, "exploited in the wild"}
	featPublic = feature{4, "public exploit"}
	featGuest  = feature{2, "a guest can reach its host"}
)

// scenarioFeatures reads the CNA's rationale for what the vector cannot
// say. In the 2026-08 data, 934 PR paragraphs mention user namespaces,
// about 150 of them to say they do not help, hence the per-sentence
// negation check; only PR:L counts, since that is the privilege a user
// namespace hands out (a PR:N paragraph mentions one for the set-up).
func scenarioFeatures(scenarios []string, v vector) []feature {
	var out []feature
	for _, s := range scenarios {
		if v.pr == 'L' {
			pr := paragraph(s, "PR:")
			if pr == "" {
				pr = s // a free-text rationale (CVE-2025-21703's)
			}
			if userNamespaces(pr) {
				out = append(out, featUserNS)
			}
		}
		switch exploitedIn(s) {
		case inTheWild:
			out = append(out, featWild)
		case public:
			out = append(out, featPublic)
		}
		if v.s == 'C' && strings.Contains(strings.ToLower(paragraph(s, "S:")), "guest") {
			out = append(out, featGuest)
		}
		if len(out) > 0 {
			break // the CNA writes one rationale; the first one that says something wins
		}
	}
	return out
}

// How a rationale says a bug has been exploited.
const (
	notExploited = iota
	public
	inTheWild
)

// exploitedIn finds "in-the-wild exploitation", "observed real-world
// exploit", "exploited in the wild" or "a public exploit achieved root" in
// a rationale. It looks around each "xploit" (a rare first byte makes the
// search fast, and the texts say "exploit" only a few times each) rather
// than matching phrases through all 13 MB of rationales.
func exploitedIn(s string) int {
	best := notExploited
	for i := 0; ; {
		j := strings.Index(s[i:], "xploit")
		if j < 0 {
			return best
		}
		j += i
		i = j + len("xploit")
		if j == 0 || lower(s[j-1]) != 'e' {
			continue
		}
		before := strings.ToLower(s[max(0, j-14) : j-1])
		switch {
		case strings.HasSuffix(before, "in-the-wild ") || strings.HasSuffix(before, "in the wild ") ||
			strings.HasSuffix(before, "real-world ") || strings.HasPrefix(s[i:], "ed in the wild"):
			return inTheWild
		case strings.HasSuffix(before, "public "):
			best = public
		}
	}
}

// paragraph returns the "KEY:X - …" line of a per-metric rationale; key
// includes the colon ("PR:").
func paragraph(s, key string) string {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], key)
		if j < 0 {
			return ""
		}
		j += i
		if j == 0 || s[j-1] == '\n' {
			end := strings.IndexByte(s[j:], '\n')
			if end < 0 {
				return s[j:]
			}
			return s[j : j+end]
		}
		i = j + len(key)
	}
	return ""
}

// userNamespaces reports whether a PR paragraph says the privileges are
// obtainable through a user namespace: some sentence names one and none
// of its words negates.
func userNamespaces(p string) bool {
	// Most PR paragraphs name no namespace: rule them out before
	// lowering the case.
	if !containsAny(p, "namespace", "nshare", "userns", "USERNS", "user_ns") {
		return false
	}
	p = strings.ToLower(p)
	for p != "" {
		var sent string
		if i := strings.IndexAny(p, ".;"); i >= 0 {
			sent, p = p[:i], p[i+1:]
		} else {
			sent, p = p, ""
		}
		if !containsAny(sent, "user namespace", "user-namespace", "userns", "unshare", "user_ns") {
			continue
		}
		if !containsAny(sent, "not ", "cannot", "can't", "n't ", "neither", " nor ", "lack", "unavailable", " no ", "instead") {
			return true
		}
	}
	return false
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
