// Package priority ranks kernel CVE records: a score from 0 to 100, a tier
// and the reasons behind them, from the CNA's own data (CVSS vector and
// rationale, fixed files, title and description) plus optional offline
// inputs: CISA's Known Exploited Vulnerabilities catalog (KEV), FIRST's
// EPSS scores, and where the affected code sits in a given kernel.
//
// # Model
//
// The score is a sum of points, clamped to 0–100 and rounded to 0.1:
//
//   - Severity. A record the CNA scored gets 6 × its CVSS 3.1 base score
//     (0–60), which already orders the attack vector (N > A > L > P),
//     privileges, user interaction, scope and the C/I/A impacts, plus
//     nudges that widen the gaps that matter to a fleet: AV:N +4, AV:A +2,
//     AV:P −4; PR:N +2, PR:H −5; UI:R −2; S:C +2 (a remote path into the
//     kernel is rarer and worse than the base score's two points say; a
//     root-only one matters little where root is trusted anyway).
//   - A record without a CNA score is not a low-scored one: the CNA
//     scores about a third of its records, nearly all HIGH or CRITICAL,
//     and its scores hardly depend on the kind of bug (every common bug
//     class averages 49–52 of the points above). So an unscored record starts
//     at that average, 50, moved by the first bug class its title and
//     description name (estimate.go): 54 for use-after-free, double free,
//     out-of-bounds write and other memory corruption; 52 for other
//     out-of-bounds accesses, information leaks, races and integer
//     overflows; 50 for NULL pointer dereferences and crashes, or when the
//     text names no class; 48 for hangs and deadlocks; 46 for memory leaks
//     and warnings.
//   - Scenario (scored records), from the CNA's rationale: the privileges
//     are obtainable in an unprivileged user namespace (+5), the bug was
//     exploited in the wild (+8) or has a public exploit (+4), a guest can
//     reach its host (+2).
//   - Subsystem, from the most exposed fixed file: net/netfilter and
//     net/sched +8, io_uring +7, bpf and binder +6, VFS core, mm and
//     overlayfs +5, network stack and core kernel +4, … other filesystems
//     +1, hardware drivers −2 (USB and HID 0: malicious devices are a real
//     attack), staging −4, files that are not kernel code (tools/,
//     Documentation/, …) −15.
//   - Placement in the given kernel: built into vmlinux +5, only in modules
//     +1 (loaded on demand), not compiled −25 (whether that makes the
//     kernel "not affected" is the applicability gauge's call), unknown
//     (no kernel given) 0.
//   - EPSS: 20 × √probability (0–20), which spreads the low end where
//     nearly every kernel CVE sits.
//
// Overrides: a CVE in KEV scores 85 + 0.15 × the sum above, so it is
// critical whatever else is true of it, and KEV entries are ordered among
// themselves by the rest; an EPSS probability of at least 0.1 makes a CVE
// at least high. A rejected record scores 0.
//
// Tiers: critical ≥ 75, high ≥ 55, medium ≥ 40, low below. Over the
// 14,623 published records of the 2026-08-19 bundle, scored without
// inputs: high 17 %, medium 83 %, low 0.2 %, critical none (that takes
// KEV, a high EPSS or a remote bug built into vmlinux); a kernel's
// placement moves what it does not compile to low.
//
// Score is deterministic and takes a few microseconds a record, most of
// it reading the descriptions of unscored records (see matcher); Rank
// orders by score, highest first, ties by CVE number.
package priority

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Tier is a coarse priority class.
type Tier string

const (
	TierCritical Tier = "critical"
	TierHigh     Tier = "high"
	TierMedium   Tier = "medium"
	TierLow      Tier = "low"
)

// Tier thresholds on the 0–100 score.
const (
	criticalAt = 75
	highAt     = 55
	mediumAt   = 40
)

// ParseTier reads a tier's name.
func ParseTier(s string) (Tier, bool) {
	switch t := Tier(strings.ToLower(s)); t {
	case TierCritical, TierHigh, TierMedium, TierLow:
		return t, true
	}
	return "", false
}

// Rank orders tiers: low 0, medium 1, high 2, critical 3.
func (t Tier) Rank() int {
	switch t {
	case TierCritical:
		return 3
	case TierHigh:
		return 2
	case TierMedium:
		return 1
	}
	return 0
}

// TierOf maps a score to its tier.
func TierOf(score float64) Tier {
	switch {
	case score >= criticalAt:
		return TierCritical
	case score >= highAt:
		return TierHigh
	case score >= mediumAt:
		return TierMedium
	}
	return TierLow
}

// Override constants (see the package comment).
const (
	kevFloor     = 85   // a KEV entry's lowest score
	kevSpread    = 0.15 // how much of the rest of the score a KEV entry keeps
	epssHighProb = 0.1  // EPSS probability that makes a CVE at least high (the top few percent of all CVEs)
)

// Where says how a kernel builds the code a CVE's fix touches.
type Where uint8

const (
	// Unknown: no kernel given, or nothing known about its build.
	Unknown Where = iota
	// NotCompiled: the kernel compiles none of the fixed files.
	NotCompiled
	// InModules: the fixed files are compiled only into modules.
	InModules
	// InVmlinux: at least one fixed file is built into the kernel image.
	InVmlinux
)

// Placement is where a CVE's affected code sits in one kernel.
type Placement struct {
	Where   Where
	Modules []string // module names, for InModules
}

// Place works out a record's placement from a build lookup that says
// which targets ("vmlinux" or module names) compile or include a source
// file, and ok=false for files the build does not use. A nil lookup or no
// files gives Unknown. It adapts a build profile (profile.Index.Lookup)
// without this package depending on one.
func Place(files []string, lookup func(path string) (targets []string, ok bool)) Placement {
	if lookup == nil || len(files) == 0 {
		return Placement{}
	}
	var mods []string
	for _, f := range files {
		targets, ok := lookup(f)
		if !ok {
			continue
		}
		for _, t := range targets {
			if t == "vmlinux" {
				return Placement{Where: InVmlinux}
			}
			mods = append(mods, t)
		}
	}
	if len(mods) == 0 {
		return Placement{Where: NotCompiled}
	}
	slices.Sort(mods)
	return Placement{Where: InModules, Modules: slices.Compact(mods)}
}

// Inputs are the optional data Score weighs besides the record. The zero
// value scores from the record alone.
type Inputs struct {
	KEV       KEV
	EPSS      EPSS
	Placement Placement
}

// Priority is a record's score (0–100), tier and the reasons for them:
// evidence of attacks (KEV, EPSS) first, then what the bug is, then where
// it sits in the kernel.
type Priority struct {
	Score   float64
	Tier    Tier
	Reasons []string
}

// Ranked is one record's priority, for Rank.
type Ranked struct {
	ID string
	Priority
}

// Placement points.
const (
	vmlinuxPoints     = 5
	modulePoints      = 1
	notCompiledPoints = -25
)

// Score rates one record. See the package comment for the model.
func Score(rec *vulns.Record, in Inputs) Priority {
	if rec.Status == vulns.StatusRejected {
		return Priority{Score: 0, Tier: TierLow, Reasons: []string{"rejected by the CNA"}}
	}
	reasons := make([]string, 0, 8)
	var pts float64

	// KEV and EPSS come first in the reasons: they are evidence of attacks,
	// the rest is judgement about the bug.
	kev, inKEV := in.KEV.Lookup(rec.ID)
	if inKEV {
		r := "in CISA KEV since " + kev.DateAdded.Format("2006-01-02")
		if kev.Ransomware() {
			r += ", used in ransomware campaigns"
		}
		reasons = append(reasons, r)
	}
	ep, hasEPSS := in.EPSS.Lookup(rec.ID)
	if hasEPSS {
		pts += 20 * math.Sqrt(ep.Probability)
		reasons = append(reasons, epssReason(ep))
	}

	if rec.CVSS != nil {
		v := parseVector(rec.CVSS.Vector)
		pts += 6*rec.CVSS.Score + v.nudge()
		reasons = append(reasons, cvssReason(rec.CVSS.Score, v))
		for _, s := range scenarioFeatures(rec.CVSS.Scenarios, v) {
			pts += s.points
			reasons = append(reasons, "scenario: "+s.reason)
		}
	} else {
		c := classify(rec.Title, rec.Description)
		pts += c.points
		reasons = append(reasons, "no CNA score: estimated from subsystem and text", c.reason())
	}

	if sub, ok := subsystemOf(rec.ProgramFiles); ok {
		pts += sub.points
		reasons = append(reasons, "subsystem "+sub.name+": "+sub.why)
	}

	switch in.Placement.Where {
	case InVmlinux:
		pts += vmlinuxPoints
		reasons = append(reasons, "built into vmlinux")
	case InModules:
		pts += modulePoints
		reasons = append(reasons, moduleReason(in.Placement.Modules))
	case NotCompiled:
		pts += notCompiledPoints
		reasons = append(reasons, "not compiled in this kernel")
	}

	score := clamp(pts)
	if inKEV {
		score = kevFloor + kevSpread*score
	}
	if hasEPSS && ep.Probability >= epssHighProb && score < highAt {
		score = highAt
	}
	score = math.Round(score*10) / 10
	return Priority{Score: score, Tier: TierOf(score), Reasons: reasons}
}

func clamp(x float64) float64 {
	return max(0, min(100, x))
}

// Rank sorts rs by score, highest first; equal scores go by CVE number,
// oldest first, so that a ranking is the same on every run.
func Rank(rs []Ranked) {
	slices.SortStableFunc(rs, func(a, b Ranked) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return vulns.CompareIDs(a.ID, b.ID)
	})
}

func epssReason(s EPSSScore) string {
	p := "<0.001"
	if s.Probability >= 0.001 {
		p = strconv.FormatFloat(s.Probability, 'g', 2, 64)
	}
	return "EPSS " + p + " (" + ordinal(int(s.Percentile*100)) + " percentile)"
}

// ordinal spells 1 as "1st", 12 as "12th", 99 as "99th".
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

func moduleReason(mods []string) string {
	switch len(mods) {
	case 0:
		return "only in modules (loaded on demand)"
	case 1:
		return "only in module " + mods[0] + " (loaded on demand)"
	}
	const show = 3
	list := strings.Join(mods[:min(len(mods), show)], ", ")
	if len(mods) > show {
		list += ", …"
	}
	return "only in modules " + list + " (loaded on demand)"
}
