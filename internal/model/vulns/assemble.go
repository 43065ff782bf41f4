package vulns

import (
	"fmt"
	"slices"
)

// Assemble builds the Record of one CVE from its files in the CNA's
// repository. files is keyed by extension without the dot ("json", "dyad",
// "sha1", "cvss", "mbox", …; others are ignored); "json" is required and its
// cveId must be id. status comes from the directory the files are in
// (published/ or rejected/), which the JSON's state does not track.
//
// The record takes Title, Description, DefaultStatus, ProgramFiles, Ranges
// and CVSS from the JSON; Branches from the .dyad; FixCommits from the
// .sha1. CVSS comes from the JSON's metrics when there are any, else from
// the .cvss file: the CNA scores a record in steps (the vector file first,
// the JSON metrics and rationale later), so a record can be scored before
// its JSON says so. When the JSON has the vector but not yet the rationale,
// the .cvss file's rationale fills Scenarios if its vector is the same. The
// Title falls back to the announcement's subject for hand-made records with
// no title (CVE-2025-0927). MainlineFix is the fix commit of the .dyad line
// fixed in a mainline release, else the last .sha1 line (see mainlineFix).
//
// Errors are *RecordError naming the file, so that a caller can report the
// record and skip it. A rejected record's auxiliary files are not held to
// that: the CNA leaves them as they were (CVE-2025-0927's .sha1 reads
// "000000000"), and all that matters about it is that it is rejected, so a
// broken .dyad, .sha1, .cvss or .mbox only leaves its fields empty.
func Assemble(id string, status Status, files map[string][]byte) (Record, error) {
	data, ok := files["json"]
	if !ok {
		return Record{}, &RecordError{ID: id, Err: ErrMissingJSON}
	}
	jr, err := ParseJSON(data)
	if err != nil {
		return Record{}, &RecordError{ID: id, File: "json", Err: err}
	}
	if jr.ID != id {
		return Record{}, &RecordError{ID: id, File: "json", Err: fmt.Errorf("%w: cveId is %s", ErrIDMismatch, jr.ID)}
	}
	rec := Record{
		ID:            id,
		Status:        status,
		Source:        SourceRepo,
		Title:         jr.Title,
		Description:   jr.Description,
		DefaultStatus: jr.DefaultStatus,
		CVSS:          jr.CVSS,
		ProgramFiles:  jr.ProgramFiles,
		Ranges:        jr.Ranges,
	}
	strict := status != StatusRejected
	// use runs parse on a file when it is there; its error fails the record
	// only when strict.
	use := func(ext string, parse func([]byte) error) error {
		data, ok := files[ext]
		if !ok {
			return nil
		}
		if err := parse(data); err != nil && strict {
			return &RecordError{ID: id, File: ext, Err: err}
		}
		return nil
	}
	if err := use("dyad", func(b []byte) (err error) {
		rec.Branches, err = ParseDyad(b)
		return err
	}); err != nil {
		return Record{}, err
	}
	if err := use("sha1", func(b []byte) (err error) {
		rec.FixCommits, err = ParseSHA1(b)
		return err
	}); err != nil {
		return Record{}, err
	}
	if rec.CVSS == nil || len(rec.CVSS.Scenarios) == 0 {
		if err := use("cvss", func(b []byte) error {
			c, err := ParseCVSSFile(b)
			if err != nil {
				return err
			}
			switch {
			case rec.CVSS == nil:
				rec.CVSS = c
			case c.Vector == rec.CVSS.Vector:
				rec.CVSS.Scenarios = c.Scenarios
			}
			return nil
		}); err != nil {
			return Record{}, err
		}
	}
	if rec.Title == "" {
		if err := use("mbox", func(b []byte) error {
			_, title, _, err := mboxSubject(b)
			rec.Title = title
			return err
		}); err != nil {
			return Record{}, err
		}
	}
	rec.MainlineFix = mainlineFix(rec.Branches, rec.FixCommits)
	return rec, nil
}

// mboxSubject reads only the headers of an announcement, for the Title
// fallback: the body need not parse for the subject to be good.
func mboxSubject(msg []byte) (id, title string, rejected bool, err error) {
	m, _, _, err := readMail(msg)
	if err != nil {
		return "", "", false, err
	}
	return ParseMboxSubject(mailSubject(m))
}

// mainlineFix picks the commit that fixed the bug in mainline: the fix of a
// branch whose fixed version is a mainline release (or that an announcement
// says was fixed "in mainline"), preferring one that is also a .sha1 line
// when several are (a CVE can have two mainline fixes). Without one it falls
// back to the last .sha1 line; the .sha1 order says little (of the 37
// multi-line .sha1 files in the 2026-08 tree the mainline commit is first
// in 14 and last in 12), but nearly every published record there has a
// .dyad naming its mainline fix, so the fallback mostly serves records
// without a .dyad.
func mainlineFix(branches []Branch, fixCommits []string) string {
	var first string
	for _, b := range branches {
		if b.FixedCommit == "" {
			continue
		}
		if b.FixedVersion != "" {
			v, err := ParseVersion(b.FixedVersion)
			if err != nil || !v.IsMainline() {
				continue
			}
		}
		if slices.Contains(fixCommits, b.FixedCommit) {
			return b.FixedCommit
		}
		if first == "" {
			first = b.FixedCommit
		}
	}
	if first != "" {
		return first
	}
	if len(fixCommits) > 0 {
		return fixCommits[len(fixCommits)-1]
	}
	return ""
}
