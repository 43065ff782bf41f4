// Package vulns models the kernel CNA's CVE records and parses the files
// the CNA publishes for each CVE (.json, .dyad, .sha1, .cvss, .mbox) and the
// linux-cve-announce mails.
package vulns

import "time"

// Status is where a record stands in the CNA's repository.
type Status string

const (
	// StatusPublished records live under cve/published/.
	StatusPublished Status = "published"
	// StatusRejected records live under cve/rejected/ (their JSON may still
	// say PUBLISHED: the directory is the truth).
	StatusRejected Status = "rejected"
	// StatusAnnounced records are known only from a linux-cve-announce mail;
	// the repository does not have them yet.
	StatusAnnounced Status = "announced"
)

// Source says where a record's data came from.
type Source string

const (
	SourceRepo     Source = "repo"
	SourceAnnounce Source = "announce"
)

// Record is everything TuxTape keeps about one CVE.
type Record struct {
	ID     string // CVE-2025-21703
	Status Status
	Source Source
	Title  string // the fix commit's subject
	// Description is the CNA's description (the fix commit's message).
	Description string
	// DefaultStatus is the semver product's defaultStatus ("affected" or
	// "unaffected"): whether versions outside every listed range are affected.
	DefaultStatus string
	CVSS          *CVSS    // nil when the CNA has not scored it
	ProgramFiles  []string // source files the fix touches
	// FixCommits are the .sha1 lines. The first one can be a stable-only
	// commit; MainlineFix is the mainline one when the dyad names it.
	FixCommits  []string
	MainlineFix string
	Branches    []Branch // one per .dyad line
	Ranges      []Range  // the JSON record's affected[].versions, both products
	// FirstSeen is when the record's .json first appeared in the
	// repository's history (records carry no publication date).
	FirstSeen time.Time
}

// CVSS is a CVSS 3.1 assessment.
type CVSS struct {
	Vector    string // CVSS:3.1/AV:L/...
	Score     float64
	Severity  string   // NONE, LOW, MEDIUM, HIGH, CRITICAL
	Scenarios []string // the CNA's rationale text
}

// Branch is one .dyad line: where a stable (or mainline) branch got the
// bug and its fix. Empty strings stand for the dyad's "0" (unknown
// introducer, or not fixed on that branch).
type Branch struct {
	IntroducedVersion string
	IntroducedCommit  string
	FixedVersion      string
	FixedCommit       string
}

// Range is one entry of a JSON record's affected[].versions.
type Range struct {
	Product         string // "git" or "semver": which affected[] entry
	Version         string
	LessThan        string
	LessThanOrEqual string
	Status          string // affected | unaffected
	VersionType     string // git | semver | original_commit_for_fix | ""
}
