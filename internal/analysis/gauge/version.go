package gauge

import (
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// versionAnswer is what the CNA's version data says of one kernel version.
type versionAnswer struct {
	affected bool
	reason   Reason // when not affected
	evidence string
}

// branchLine is a parsed .dyad line; zero Versions stand for the dyad's 0.
type branchLine struct {
	introduced, fixed vulns.Version
	raw               vulns.Branch
}

// versionVerdict applies the dyad lines to kernel version k, whose branch
// base (the mainline release it forked from) is base. Per line, k has the
// bug when the introducing version is unknown, a mainline release not after
// base, or a release of k's own stable branch not after k; k has the fix
// when the fixing version is a mainline release not after base, or a
// release of k's branch not after k. k is affected when some line brings
// the bug and no line brings the fix — the version form of the CNA's own
// rule (some introducer is an ancestor, no fix is).
func versionVerdict(lines []branchLine, k, base vulns.Version) versionAnswer {
	has := func(v vulns.Version) bool {
		switch {
		case v.IsZero():
			return false
		case v.IsMainline():
			// A mainline release reaches k if k's branch forked at or after it.
			return v.Compare(base) <= 0
		default:
			return v.Branch() == base.Branch() && v.Compare(k) <= 0
		}
	}
	var intro *branchLine
	for i := range lines {
		l := &lines[i]
		if l.introduced.IsZero() || has(l.introduced) {
			intro = l
			break
		}
	}
	if intro == nil {
		return versionAnswer{reason: NotInRange, evidence: "no affected range reaches " + k.String() + ": the bug came in after its branch point, or only on other branches"}
	}
	for _, l := range lines {
		if has(l.fixed) {
			where := "in mainline " + l.fixed.String() + ", before the " + base.String() + " branch point"
			if !l.fixed.IsMainline() {
				where = "in " + l.fixed.String()
			}
			return versionAnswer{reason: FixedInVersion, evidence: "fixed " + where + " by " + short(l.raw.FixedCommit)}
		}
	}
	from := "unknown"
	if !intro.introduced.IsZero() {
		from = intro.introduced.String()
	}
	ev := "introduced in " + from + ", no fix on the " + base.String() + " branch up to " + k.String()
	for _, l := range lines {
		if !l.fixed.IsZero() && !l.fixed.IsMainline() && l.fixed.Branch() == base.Branch() {
			ev = "introduced in " + from + ", fixed in " + l.fixed.String() + " (after " + k.String() + ")"
			break
		}
	}
	return versionAnswer{affected: true, evidence: ev}
}

// parseLines parses a record's dyad lines; lines with versions that do not
// parse are reported, and the record is then judged on the rest.
func parseLines(bs []vulns.Branch) (lines []branchLine, bad []string) {
	for _, b := range bs {
		var l branchLine
		l.raw = b
		var err error
		if b.IntroducedVersion != "" {
			if l.introduced, err = vulns.ParseVersion(b.IntroducedVersion); err != nil {
				bad = append(bad, b.IntroducedVersion)
				continue
			}
		}
		if b.FixedVersion != "" {
			if l.fixed, err = vulns.ParseVersion(b.FixedVersion); err != nil {
				bad = append(bad, b.FixedVersion)
				continue
			}
		}
		lines = append(lines, l)
	}
	return lines, bad
}

func short(commit string) string {
	if commit == "" {
		return "an unnamed commit"
	}
	return vulns.ShortCommit(commit)
}
