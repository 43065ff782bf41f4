package vulns

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseAnnouncement21703(t *testing.T) {
	rec, err := ParseAnnouncement(testdataFile(t, "CVE-2025-21703.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "CVE-2025-21703" || rec.Status != StatusAnnounced || rec.Source != SourceAnnounce {
		t.Errorf("ID, Status, Source = %q, %q, %q", rec.ID, rec.Status, rec.Source)
	}
	if want := "netem: Update sch->q.qlen before qdisc_tree_reduce_backlog()"; rec.Title != want {
		t.Errorf("Title = %q, want %q", rec.Title, want)
	}
	jr, err := ParseJSON(testdataFile(t, "CVE-2025-21703.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Description != jr.Description {
		t.Errorf("Description =\n%q\nwant the JSON's\n%q", rec.Description, jr.Description)
	}
	if c := rec.CVSS; c == nil || c.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" || c.Score != 7.8 || c.Severity != "HIGH" {
		t.Errorf("CVSS = %+v", c)
	}
	dyad, err := ParseDyad(testdataFile(t, "CVE-2025-21703.dyad"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Branches, dyad) {
		t.Errorf("Branches = %+v\nwant the dyad's %+v", rec.Branches, dyad)
	}
	if !slices.Equal(rec.ProgramFiles, []string{"net/sched/sch_netem.c"}) {
		t.Errorf("ProgramFiles = %q", rec.ProgramFiles)
	}
	if rec.MainlineFix != "638ba5089324796c2ee49af10427459c2de35f71" {
		t.Errorf("MainlineFix = %q", rec.MainlineFix)
	}
}

func TestParseAnnouncementVariants(t *testing.T) {
	tests := []struct {
		file        string
		status      Status
		title       string
		scored      bool
		branches    []Branch // nil: not checked
		nBranches   int
		files       []string
		mainlineFix string
	}{
		// "Issue introduced in X with commit A" alone: an unfixed branch.
		{file: "CVE-2024-26581.mbox", status: StatusAnnounced, scored: true, nBranches: 8,
			title: "netfilter: nft_set_rbtree: skip end interval element from gc",
			files: []string{"net/netfilter/nft_set_rbtree.c"}, mainlineFix: "60c0c230c6f046da536d3df8b39a20b9a9fd6af0"},
		// Abbreviated commit ids, from an old mail.
		{file: "CVE-2024-35951.mbox", status: StatusAnnounced, scored: true, nBranches: 3,
			title: "drm/panfrost: Fix the error path in panfrost_mmu_map_fault_addr()",
			files: []string{"drivers/gpu/drm/panfrost/panfrost_mmu.c"}, mainlineFix: "1fc9af813b25e146d3607669247d0f970f5a87c3"},
		// "Fixed in X with commit B": introducer unknown.
		{file: "CVE-2026-46017.mbox", status: StatusAnnounced, nBranches: 2, branches: []Branch{
			{FixedVersion: "7.0.4", FixedCommit: "cbf75cf212ee6e499abc1757fb4b5ae6d70ed0aa"},
			{FixedVersion: "7.1", FixedCommit: "3bac01168982ec3e3bf87efdc1807c7933590a85"},
		}, mainlineFix: "3bac01168982ec3e3bf87efdc1807c7933590a85"},
		// "Issue fixed in mainline with commit C" (rejected records only).
		{file: "CVE-2025-23139.mbox", status: StatusAnnounced, nBranches: 1, branches: []Branch{{FixedCommit: "5df5daf"}}, mainlineFix: "5df5daf"},
		// Not fixed anywhere.
		{file: "CVE-2023-53012.mbox", status: StatusAnnounced, nBranches: 3, mainlineFix: ""},
		// "From the APM:" in the body.
		{file: "CVE-2026-46032.mbox", status: StatusAnnounced, nBranches: 2, mainlineFix: "5d291ef0585ed880ed4dd71ea1a5965e0a65fb53"},
		// Rejection mails.
		{file: "CVE-2024-26701.mbox.rejected", status: StatusRejected, title: "eventfs: Do not create dentries nor inodes in iterate_shared"},
		{file: "CVE-2025-0927.mbox.rejected", status: StatusRejected},
	}
	for _, tt := range tests {
		rec, err := ParseAnnouncement(testdataFile(t, tt.file))
		if err != nil {
			t.Errorf("ParseAnnouncement(%s) = %v", tt.file, err)
			continue
		}
		id, _, _ := strings.Cut(tt.file, ".")
		if rec.ID != id || rec.Status != tt.status {
			t.Errorf("%s: ID, Status = %q, %q, want %q, %q", tt.file, rec.ID, rec.Status, id, tt.status)
		}
		if tt.title != "" && rec.Title != tt.title {
			t.Errorf("%s: Title = %q, want %q", tt.file, rec.Title, tt.title)
		}
		if (rec.CVSS != nil) != tt.scored {
			t.Errorf("%s: CVSS = %+v, want scored %v", tt.file, rec.CVSS, tt.scored)
		}
		if len(rec.Branches) != tt.nBranches {
			t.Errorf("%s: %d branches, want %d: %+v", tt.file, len(rec.Branches), tt.nBranches, rec.Branches)
		}
		if tt.branches != nil && !slices.Equal(rec.Branches, tt.branches) {
			t.Errorf("%s: Branches = %+v, want %+v", tt.file, rec.Branches, tt.branches)
		}
		if tt.files != nil && !slices.Equal(rec.ProgramFiles, tt.files) {
			t.Errorf("%s: ProgramFiles = %q, want %q", tt.file, rec.ProgramFiles, tt.files)
		}
		if rec.MainlineFix != tt.mainlineFix {
			t.Errorf("%s: MainlineFix = %q, want %q", tt.file, rec.MainlineFix, tt.mainlineFix)
		}
		if tt.status == StatusAnnounced && rec.Description == "" {
			t.Errorf("%s: no Description", tt.file)
		}
		if strings.Contains(rec.Description, assignedPrefix) {
			t.Errorf("%s: Description keeps the assigned line", tt.file)
		}
	}
}

func TestParseAnnouncementCRLF(t *testing.T) {
	msg := testdataFile(t, "CVE-2025-21703.mbox")
	want, err := ParseAnnouncement(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAnnouncement(bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != want.Description || !slices.Equal(got.Branches, want.Branches) || !slices.Equal(got.ProgramFiles, want.ProgramFiles) {
		t.Errorf("CRLF mail parses differently: %+v", got)
	}
	// Without the mbox "From " line, as a single mail.
	_, rest, _ := bytes.Cut(msg, []byte("\n"))
	if got, err := ParseAnnouncement(rest); err != nil || got.Description != want.Description {
		t.Errorf("mail without postmark: %v", err)
	}
}

func TestParseAnnouncementErrors(t *testing.T) {
	msg := string(testdataFile(t, "CVE-2025-21703.mbox"))
	tests := []struct {
		name, in, wantErr string
		is                error
	}{
		{"empty", "", "read mail", nil},
		{"no headers", "hello\n", "read mail", nil},
		{"not a CVE subject", strings.Replace(msg, "Subject: CVE-2025-21703:", "Subject: Re: hello", 1), "not a CVE announcement", ErrNotAnnouncement},
		{"bad id", strings.Replace(msg, "Subject: CVE-2025-21703:", "Subject: CVE-25-1:", 1), "not a CVE announcement", ErrNotAnnouncement},
		{"no description", strings.Replace(msg, "Description\n===========", "Summary\n=======", 1), "no Description section", ErrNotAnnouncement},
		{"bad version", strings.Replace(msg, "fixed in 6.1.129", "fixed in 6.1.x", 1), `affected and fixed versions: line 36: unknown version "6.1.x"`, ErrUnknownVersion},
		{"bad commit", strings.Replace(msg, "with commit 7b79ca9a1de6a428d486ff52fb3d602321c08f55", "with commit 7B79", 1), "bad commit id", ErrBadCommit},
		{"unknown phrasing", strings.Replace(msg, "\tIssue introduced in 5.4.288", "\tBug introduced in 5.4.288", 1), "line 33: unrecognized line", nil},
		{"bad vector", strings.Replace(msg, "Vector:    CVSS:3.1/AV:L", "Vector:    CVSS:3.1/AV:Z", 1), "severity: bad CVSS vector", ErrBadVector},
		{"no vector", strings.Replace(msg, "Vector:", "Vektor:", 1), "severity: bad CVSS vector: no Vector line", ErrBadVector},
		{"bad file line", strings.Replace(msg, "\tnet/sched/sch_netem.c", "\tnet/sched/sch netem.c", 1), "affected files: line 56: not a path", nil},
	}
	for _, tt := range tests {
		rec, err := ParseAnnouncement([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: ParseAnnouncement = %+v, %v, want error containing %q", tt.name, rec.ID, err, tt.wantErr)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v does not wrap %v", tt.name, err, tt.is)
		}
	}
}

func TestParseMboxSubject(t *testing.T) {
	tests := []struct {
		in, id, title string
		rejected      bool
		ok            bool
	}{
		{"CVE-2025-21703: netem: Update sch->q.qlen before qdisc_tree_reduce_backlog()", "CVE-2025-21703", "netem: Update sch->q.qlen before qdisc_tree_reduce_backlog()", false, true},
		{"REJECTED: CVE-2024-26701: eventfs: Do not create dentries nor inodes in iterate_shared", "CVE-2024-26701", "eventfs: Do not create dentries nor inodes in iterate_shared", true, true},
		{"  CVE-2024-35951: drm/panfrost: Fix the error path in\n panfrost_mmu_map_fault_addr()", "CVE-2024-35951", "drm/panfrost: Fix the error path in panfrost_mmu_map_fault_addr()", false, true},
		{"CVE-2026-74296: RDMA/mlx5: Release the HW‑provided UAR index", "CVE-2026-74296", "RDMA/mlx5: Release the HW‑provided UAR index", false, true},
		{"CVE-2025-1234:", "CVE-2025-1234", "", false, true},
		{"", "", "", false, false},
		{"CVE-2025-1234 no colon", "", "", false, false},
		{"Re: CVE-2025-1234: x", "", "", false, false},
		{"[PATCH] x: y", "", "", false, false},
	}
	for _, tt := range tests {
		id, title, rejected, err := ParseMboxSubject(tt.in)
		if (err == nil) != tt.ok || id != tt.id || title != tt.title || rejected != tt.rejected {
			t.Errorf("ParseMboxSubject(%q) = %q, %q, %v, %v; want %q, %q, %v, ok %v", tt.in, id, title, rejected, err, tt.id, tt.title, tt.rejected, tt.ok)
		}
	}
}

func TestParseMbox(t *testing.T) {
	var stream bytes.Buffer
	for _, f := range []string{
		"CVE-2025-21703.mbox",
		"CVE-2026-46032.mbox", // a body line "From the APM:" must not split it
		"CVE-2024-26701.mbox.rejected",
		"CVE-2024-26581.mbox",
	} {
		stream.Write(testdataFile(t, f))
		stream.WriteString("\n")
	}
	// A message that is not an announcement, public-inbox style.
	stream.WriteString("From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: someone\nSubject: Re: CVE-2025-21703: netem\n\nquestion\n")
	recs, errs := ParseMbox(&stream)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID+":"+string(r.Status))
	}
	want := []string{"CVE-2025-21703:announced", "CVE-2026-46032:announced", "CVE-2024-26701:rejected", "CVE-2024-26581:announced"}
	if !slices.Equal(ids, want) {
		t.Errorf("ParseMbox records = %q, want %q", ids, want)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "message 5: ") || !errors.Is(errs[0], ErrNotAnnouncement) {
		t.Errorf("ParseMbox errors = %v, want one for message 5", errs)
	}
	if len(recs) > 1 && !strings.Contains(recs[1].Description, "\nFrom the APM:\n") {
		t.Errorf("CVE-2026-46032 description lost its \"From the APM:\" line: %q", recs[1].Description)
	}

	if recs, errs := ParseMbox(strings.NewReader("")); len(recs) != 0 || len(errs) != 0 {
		t.Errorf("ParseMbox(empty) = %v, %v", recs, errs)
	}
	if _, errs := ParseMbox(errReader{}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "read mbox") {
		t.Errorf("ParseMbox(failing reader) errors = %v", errs)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func FuzzParseAnnouncement(f *testing.F) {
	for _, b := range testdataGlob(f, "*.mbox*") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseAnnouncement(data)
		if err != nil {
			return
		}
		if !IsCVEID(rec.ID) {
			t.Fatalf("accepted id %q", rec.ID)
		}
		if rec.Status != StatusAnnounced && rec.Status != StatusRejected {
			t.Fatalf("status %q", rec.Status)
		}
		// ParseMbox must find the same message in a stream of one.
		recs, errs := ParseMbox(bytes.NewReader(data))
		if len(errs) == 0 && len(recs) == 1 && recs[0].ID != rec.ID {
			t.Fatalf("ParseMbox found %q, ParseAnnouncement %q", recs[0].ID, rec.ID)
		}
	})
}
