package priority

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// scored makes a published record the CNA scored with vector.
func scored(t testing.TB, id, vector, scenario string, files ...string) *vulns.Record {
	t.Helper()
	c, err := vulns.ParseCVSSVector(vector)
	if err != nil {
		t.Fatal(err)
	}
	if scenario != "" {
		c.Scenarios = []string{scenario}
	}
	return &vulns.Record{ID: id, Status: vulns.StatusPublished, CVSS: c, ProgramFiles: files}
}

// unscored makes a published record without a CNA score.
func unscored(id, title string, files ...string) *vulns.Record {
	return &vulns.Record{
		ID:           id,
		Status:       vulns.StatusPublished,
		Title:        title,
		Description:  "In the Linux kernel, the following vulnerability has been resolved:\n\n" + title + "\n",
		ProgramFiles: files,
	}
}

func epssOf(t testing.TB, rows ...string) EPSS {
	t.Helper()
	e, err := LoadEPSS(strings.NewReader("cve,epss,percentile\n" + strings.Join(rows, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	localFull  = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" // 7.8, the CNA's usual
	remoteFull = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	localDoS   = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H" // 5.5
	nft        = "net/netfilter/nf_tables_api.c"
	uvc        = "drivers/media/usb/uvc/uvc_driver.c"
	driver     = "drivers/media/platform/foo/foo.c"
	userNSText = "AV:L - Reached through the NETLINK_NETFILTER socket.\n" +
		"PR:L - The path is gated by CAP_NET_ADMIN in the socket's user namespace; an ordinary user obtains it via `unshare -Urn`.\n" +
		"UI:N - None."
	wildText = "AV:L - Local syscalls.\nAC:L - In-the-wild exploitation confirms it is reliably winnable.\nPR:L - Any local user."
)

func TestScore(t *testing.T) {
	kev := fixtureKEV(t)
	epss := fixtureEPSS(t)
	tests := []struct {
		name    string
		rec     *vulns.Record
		in      Inputs
		score   float64
		tier    Tier
		reasons []string
	}{
		{
			name:  "scored local bug in netfilter",
			rec:   scored(t, "CVE-2024-26581", localFull, "", nft),
			score: 54.8, tier: TierMedium,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "subsystem net/netfilter: commonly attacked"},
		},
		{
			name:  "user namespace scenario",
			rec:   scored(t, "CVE-2024-26581", localFull, userNSText, nft),
			score: 59.8, tier: TierHigh,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges",
				"scenario: reachable from an unprivileged user namespace", "subsystem net/netfilter: commonly attacked"},
		},
		{
			name: "user namespace in a free-text rationale",
			rec: scored(t, "CVE-2025-21703", localFull, "UAF in netem/DRR qdisc interaction. qdisc_tree_reduce_backlog() called "+
				"before qlen update misses DRR qlen_notify, leaving freed class on active list. "+
				"Exploitable for privilege escalation from unprivileged user namespaces.", "net/sched/sch_netem.c"),
			score: 59.8, tier: TierHigh,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges",
				"scenario: reachable from an unprivileged user namespace", "subsystem net/sched: commonly attacked"},
		},
		{
			name:  "exploited in the wild scenario",
			rec:   scored(t, "CVE-2025-38352", localFull, wildText, "kernel/time/posix-cpu-timers.c"),
			score: 58.8, tier: TierHigh,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "scenario: exploited in the wild",
				"subsystem kernel/time: core kernel"},
		},
		{
			name:  "remote, no privileges",
			rec:   scored(t, "CVE-2026-10001", remoteFull, "", "net/ipv4/tcp_input.c"),
			score: 68.8, tier: TierHigh,
			reasons: []string{"CNA CVSS 9.8 (AV:N/PR:N): network, no privileges", "subsystem net/ipv4: network stack"},
		},
		{
			name:  "local denial of service in a driver",
			rec:   scored(t, "CVE-2026-10002", localDoS, "", driver),
			score: 31, tier: TierLow,
			reasons: []string{"CNA CVSS 5.5 (AV:L/PR:L): local, low privileges, denial of service only",
				"subsystem drivers/media: hardware driver, needs the device"},
		},
		{
			name:  "userspace tool",
			rec:   scored(t, "CVE-2026-10003", localFull, "", "tools/perf/util/header.c"),
			score: 31.8, tier: TierLow,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "subsystem tools: userspace tool, not kernel code"},
		},
		{
			name:  "unscored use-after-free in a driver",
			rec:   unscored("CVE-2026-10004", "media: foo: fix use-after-free in foo_remove", driver),
			score: 52, tier: TierMedium,
			reasons: []string{"no CNA score: estimated from subsystem and text", "text names a use-after-free",
				"subsystem drivers/media: hardware driver, needs the device"},
		},
		{
			name:  "unscored memory leak stays in the middle",
			rec:   unscored("CVE-2026-10005", "media: foo: fix a memory leak in foo_probe", driver),
			score: 44, tier: TierMedium,
			reasons: []string{"no CNA score: estimated from subsystem and text", "text names a memory leak",
				"subsystem drivers/media: hardware driver, needs the device"},
		},
		{
			name:  "unscored, no class, no files",
			rec:   unscored("CVE-2026-10006", "foo: handle the bar case"),
			score: 50, tier: TierMedium,
			reasons: []string{"no CNA score: estimated from subsystem and text", "text names no bug class"},
		},
		{
			name:  "KEV makes an unscored driver bug critical",
			rec:   unscored("CVE-2024-53104", "media: uvcvideo: Skip parsing frames of type UVC_VS_UNDEFINED in uvc_parse_format", uvc),
			in:    Inputs{KEV: kev, EPSS: epss},
			score: 92.9, tier: TierCritical,
			reasons: []string{"in CISA KEV since 2025-02-05", "EPSS 0.015 (80th percentile)",
				"no CNA score: estimated from subsystem and text", "text names no bug class",
				"subsystem drivers/media/usb: USB, attacked with malicious devices"},
		},
		{
			name:  "KEV with ransomware use and EPSS",
			rec:   scored(t, "CVE-2024-1086", localFull, userNSText, "net/netfilter/nf_tables_api.c"),
			in:    Inputs{KEV: kev, EPSS: epss, Placement: Placement{Where: InModules, Modules: []string{"nf_tables"}}},
			score: 96.9, tier: TierCritical,
			reasons: []string{"in CISA KEV since 2024-05-30, used in ransomware campaigns", "EPSS 0.83 (99th percentile)",
				"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "scenario: reachable from an unprivileged user namespace",
				"subsystem net/netfilter: commonly attacked", "only in module nf_tables (loaded on demand)"},
		},
		{
			name:  "KEV even when not compiled",
			rec:   scored(t, "CVE-2024-36971", localFull, "", "net/core/dst.c"),
			in:    Inputs{KEV: kev, Placement: Placement{Where: NotCompiled}},
			score: 88.9, tier: TierCritical,
			reasons: []string{"in CISA KEV since 2024-08-07", "CNA CVSS 7.8 (AV:L/PR:L): local, low privileges",
				"subsystem net/core: network stack", "not compiled in this kernel"},
		},
		{
			name:  "KEV with the worst of everything else",
			rec:   unscored("CVE-2024-53104", "foo: fix memory leak", "tools/foo.c"),
			in:    Inputs{KEV: kev, Placement: Placement{Where: NotCompiled}},
			score: 85.9, tier: TierCritical,
			reasons: []string{"in CISA KEV since 2025-02-05", "no CNA score: estimated from subsystem and text",
				"text names a memory leak", "subsystem tools: userspace tool, not kernel code", "not compiled in this kernel"},
		},
		{
			name:  "EPSS of 0.1 or more makes it at least high",
			rec:   scored(t, "CVE-2026-10007", localFull, "", "tools/perf/util/header.c"),
			in:    Inputs{EPSS: epssOf(t, "CVE-2026-10007,0.12,0.95")},
			score: 55, tier: TierHigh,
			reasons: []string{"EPSS 0.12 (95th percentile)", "CNA CVSS 7.8 (AV:L/PR:L): local, low privileges",
				"subsystem tools: userspace tool, not kernel code"},
		},
		{
			name:  "built into vmlinux",
			rec:   scored(t, "CVE-2026-10008", localFull, "", "mm/memory.c"),
			in:    Inputs{Placement: Placement{Where: InVmlinux}},
			score: 56.8, tier: TierHigh,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "subsystem mm: core memory management",
				"built into vmlinux"},
		},
		{
			name:  "not compiled",
			rec:   scored(t, "CVE-2026-10009", localFull, "", "mm/memory.c"),
			in:    Inputs{Placement: Placement{Where: NotCompiled}},
			score: 26.8, tier: TierLow,
			reasons: []string{"CNA CVSS 7.8 (AV:L/PR:L): local, low privileges", "subsystem mm: core memory management",
				"not compiled in this kernel"},
		},
		{
			name:  "rejected",
			rec:   &vulns.Record{ID: "CVE-2025-0927", Status: vulns.StatusRejected},
			in:    Inputs{KEV: kev},
			score: 0, tier: TierLow,
			reasons: []string{"rejected by the CNA"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Score(tt.rec, tt.in)
			if got.Score != tt.score || got.Tier != tt.tier {
				t.Errorf("Score(%s) = %v %s, want %v %s", tt.rec.ID, got.Score, got.Tier, tt.score, tt.tier)
			}
			if !slices.Equal(got.Reasons, tt.reasons) {
				t.Errorf("Score(%s) reasons\n got %q\nwant %q", tt.rec.ID, got.Reasons, tt.reasons)
			}
		})
	}
}

// TestScoreOrder checks the model's orderings: each list must score
// strictly decreasing.
func TestScoreOrder(t *testing.T) {
	v := func(vec string) *vulns.Record { return scored(t, "CVE-2026-20000", vec, "", "net/ipv4/tcp.c") }
	at := func(w Where, mods ...string) Inputs { return Inputs{Placement: Placement{Where: w, Modules: mods}} }
	rec := scored(t, "CVE-2026-20001", localFull, "", "fs/namei.c")
	uaf := unscored("CVE-2026-20002", "foo: fix use-after-free in foo_release", "fs/namei.c")
	type item struct {
		rec *vulns.Record
		in  Inputs
	}
	tests := []struct {
		name  string
		items []item
	}{
		{"attack vector N > A > L > P", []item{
			{v("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
		}},
		{"privileges N > L > H", []item{
			{v("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
		}},
		{"user interaction N > R", []item{
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:H/I:H/A:H"), Inputs{}},
		}},
		{"scope C > U", []item{
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
		}},
		{"impacts", []item{
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"), Inputs{}},
			{v("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:L"), Inputs{}},
		}},
		{"placement vmlinux > module > unknown > not compiled", []item{
			{rec, at(InVmlinux)},
			{rec, at(InModules, "ext4")},
			{rec, Inputs{}},
			{rec, at(NotCompiled)},
		}},
		{"unscored by class", []item{
			{unscored("CVE-2026-20003", "foo: fix a double free in foo_close"), Inputs{}},
			{unscored("CVE-2026-20004", "foo: fix out-of-bounds read in foo_parse"), Inputs{}},
			{unscored("CVE-2026-20005", "foo: fix NULL pointer dereference in foo_open"), Inputs{}},
			{unscored("CVE-2026-20006", "foo: fix deadlock between foo_lock and bar_lock"), Inputs{}},
			{unscored("CVE-2026-20007", "foo: fix memory leak in foo_probe"), Inputs{}},
		}},
		{"subsystem", []item{
			{scored(t, "CVE-2026-20008", localFull, "", "net/sched/sch_qfq.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "io_uring/net.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "mm/memory.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "net/ipv4/tcp.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "fs/ext4/inode.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "drivers/net/ethernet/foo.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "drivers/staging/foo.c"), Inputs{}},
			{scored(t, "CVE-2026-20008", localFull, "", "tools/perf/foo.c"), Inputs{}},
		}},
		{"EPSS", []item{
			{uaf, Inputs{EPSS: epssOf(t, "CVE-2026-20002,0.09,0.97")}},
			{uaf, Inputs{EPSS: epssOf(t, "CVE-2026-20002,0.01,0.80")}},
			{uaf, Inputs{}},
		}},
		{"KEV over the same record without", []item{
			{unscored("CVE-2024-53104", "foo: fix memory leak", "tools/foo.c"), Inputs{KEV: fixtureKEV(t)}},
			{unscored("CVE-2024-53104", "foo: fix memory leak", "tools/foo.c"), Inputs{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := Score(tt.items[0].rec, tt.items[0].in)
			for i, it := range tt.items[1:] {
				p := Score(it.rec, it.in)
				if p.Score >= prev.Score {
					t.Errorf("item %d scores %v %q, not below item %d's %v %q", i+1, p.Score, p.Reasons, i, prev.Score, prev.Reasons)
				}
				prev = p
			}
		})
	}
}

func TestScoreRange(t *testing.T) {
	// Extreme inputs stay within 0–100.
	hi := scored(t, "CVE-2024-1086", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", userNSText+"\n"+wildText, nft)
	lo := scored(t, "CVE-2026-30000", "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L", "", "Documentation/foo.rst")
	e := epssOf(t, "CVE-2024-1086,1,1", "CVE-2026-30000,0,0")
	for _, c := range []struct {
		rec *vulns.Record
		in  Inputs
	}{
		{hi, Inputs{KEV: fixtureKEV(t), EPSS: e, Placement: Placement{Where: InVmlinux}}},
		{hi, Inputs{EPSS: e, Placement: Placement{Where: InVmlinux}}},
		{lo, Inputs{EPSS: e, Placement: Placement{Where: NotCompiled}}},
	} {
		p := Score(c.rec, c.in)
		if p.Score < 0 || p.Score > 100 {
			t.Errorf("Score(%s) = %v, out of range", c.rec.ID, p.Score)
		}
	}
}

func TestScoreDeterministic(t *testing.T) {
	in := Inputs{KEV: fixtureKEV(t), EPSS: fixtureEPSS(t), Placement: Placement{Where: InModules, Modules: []string{"b", "a"}}}
	rec := scored(t, "CVE-2024-1086", localFull, userNSText, nft, "include/net/netfilter/nf_tables.h")
	first := Score(rec, in)
	for range 10 {
		if got := Score(rec, in); !reflect.DeepEqual(got, first) {
			t.Fatalf("Score changed: %+v then %+v", first, got)
		}
	}
}

func TestRank(t *testing.T) {
	rs := []Ranked{
		{ID: "CVE-2024-10000", Priority: Priority{Score: 50}},
		{ID: "CVE-2025-1000", Priority: Priority{Score: 50}},
		{ID: "CVE-2024-9999", Priority: Priority{Score: 50}},
		{ID: "CVE-2023-52927", Priority: Priority{Score: 70.5}},
		{ID: "CVE-2024-1086", Priority: Priority{Score: 97}},
		{ID: "not-an-id", Priority: Priority{Score: 50}},
		{ID: "CVE-2024-0001", Priority: Priority{Score: 12}},
	}
	want := []string{"CVE-2024-1086", "CVE-2023-52927", "CVE-2024-9999", "CVE-2024-10000", "CVE-2025-1000", "not-an-id", "CVE-2024-0001"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		Rank(rs)
		var got []string
		for _, x := range rs {
			got = append(got, x.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Rank = %q, want %q", got, want)
		}
	}
}

func TestTierOf(t *testing.T) {
	tests := []struct {
		score float64
		want  Tier
	}{
		{100, TierCritical}, {75, TierCritical}, {74.9, TierHigh}, {55, TierHigh},
		{54.9, TierMedium}, {40, TierMedium}, {39.9, TierLow}, {0, TierLow},
	}
	for _, tt := range tests {
		if got := TierOf(tt.score); got != tt.want {
			t.Errorf("TierOf(%v) = %s, want %s", tt.score, got, tt.want)
		}
	}
}

func TestPlace(t *testing.T) {
	build := map[string][]string{
		"net/netfilter/nf_tables_api.c":     {"nf_tables"},
		"net/netfilter/nft_ct.c":            {"nf_tables"},
		"net/ipv4/tcp.c":                    {"vmlinux"},
		"include/net/netfilter/nf_tables.h": {"nf_tables", "nft_fib"},
	}
	lookup := func(p string) ([]string, bool) {
		t, ok := build[p]
		return t, ok
	}
	tests := []struct {
		name   string
		files  []string
		lookup func(string) ([]string, bool)
		want   Placement
	}{
		{"no kernel", []string{"net/ipv4/tcp.c"}, nil, Placement{}},
		{"no files", nil, lookup, Placement{}},
		{"vmlinux", []string{"net/netfilter/nf_tables_api.c", "net/ipv4/tcp.c"}, lookup, Placement{Where: InVmlinux}},
		{"module", []string{"net/netfilter/nf_tables_api.c", "net/netfilter/nft_ct.c"}, lookup,
			Placement{Where: InModules, Modules: []string{"nf_tables"}}},
		{"header in modules", []string{"include/net/netfilter/nf_tables.h", "drivers/foo.c"}, lookup,
			Placement{Where: InModules, Modules: []string{"nf_tables", "nft_fib"}}},
		{"not compiled", []string{"drivers/foo.c"}, lookup, Placement{Where: NotCompiled}},
	}
	for _, tt := range tests {
		if got := Place(tt.files, tt.lookup); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Place(%q) = %+v, want %+v", tt.name, tt.files, got, tt.want)
		}
	}
}

func TestModuleReason(t *testing.T) {
	tests := []struct {
		mods []string
		want string
	}{
		{nil, "only in modules (loaded on demand)"},
		{[]string{"nf_tables"}, "only in module nf_tables (loaded on demand)"},
		{[]string{"a", "b"}, "only in modules a, b (loaded on demand)"},
		{[]string{"a", "b", "c", "d"}, "only in modules a, b, c, … (loaded on demand)"},
	}
	for _, tt := range tests {
		if got := moduleReason(tt.mods); got != tt.want {
			t.Errorf("moduleReason(%q) = %q, want %q", tt.mods, got, tt.want)
		}
	}
}

func TestCVSSReason(t *testing.T) {
	tests := []struct {
		vector string
		score  float64
		want   string
	}{
		{localFull, 7.8, "CNA CVSS 7.8 (AV:L/PR:L): local, low privileges"},
		{remoteFull, 9.8, "CNA CVSS 9.8 (AV:N/PR:N): network, no privileges"},
		{"CVSS:3.1/AV:A/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:H", 7.1,
			"CNA CVSS 7.1 (AV:A/AC:H/PR:N/UI:R/S:C): adjacent network, hard to trigger, no privileges, needs user interaction, changes scope, no integrity impact"},
		{localDoS, 5.5, "CNA CVSS 5.5 (AV:L/PR:L): local, low privileges, denial of service only"},
		{"CVSS:3.1/AV:P/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 6.1, "CNA CVSS 6.1 (AV:P/PR:H): physical, high privileges"},
		{"junk", 7, "CNA CVSS 7.0"},
	}
	for _, tt := range tests {
		if got := cvssReason(tt.score, parseVector(tt.vector)); got != tt.want {
			t.Errorf("cvssReason(%v, %q) = %q, want %q", tt.score, tt.vector, got, tt.want)
		}
	}
}

func TestEPSSReason(t *testing.T) {
	tests := []struct {
		s    EPSSScore
		want string
	}{
		{EPSSScore{0.83201, 0.99231}, "EPSS 0.83 (99th percentile)"},
		{EPSSScore{0.01468, 0.80163}, "EPSS 0.015 (80th percentile)"},
		{EPSSScore{0.00031, 0.07411}, "EPSS <0.001 (7th percentile)"},
		{EPSSScore{1, 1}, "EPSS 1 (100th percentile)"},
		{EPSSScore{0.5, 0.011}, "EPSS 0.5 (1st percentile)"},
		{EPSSScore{0.5, 0.22}, "EPSS 0.5 (22nd percentile)"},
		{EPSSScore{0.5, 0.43}, "EPSS 0.5 (43rd percentile)"},
		{EPSSScore{0.5, 0.12}, "EPSS 0.5 (12th percentile)"},
		{EPSSScore{0.5, 0.13}, "EPSS 0.5 (13th percentile)"},
	}
	for _, tt := range tests {
		if got := epssReason(tt.s); got != tt.want {
			t.Errorf("epssReason(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestSubsystemOf(t *testing.T) {
	tests := []struct {
		files  []string
		name   string
		points float64
	}{
		{[]string{"net/netfilter/nf_tables_api.c"}, "net/netfilter", 8},
		{[]string{"drivers/net/ethernet/intel/ice/ice_main.c", "net/core/dev.c"}, "net/core", 4},
		{[]string{"net/core/dev.c", "net/sched/sch_api.c"}, "net/sched", 8},
		{[]string{"fs/namei.c"}, "fs", 5},
		{[]string{"fs/ext4/inode.c"}, "fs/ext4", 1},
		{[]string{"fs/smb/server/smb2pdu.c"}, "fs/smb/server", 5},
		{[]string{"fs/smb/client/connect.c"}, "fs/smb/client", 2},
		{[]string{"drivers/gpu/drm/i915/i915_gem.c"}, "drivers/gpu", 1},
		{[]string{"drivers/scsi/sd.c"}, "drivers/scsi", -2},
		{[]string{"sound/usb/quirks.c"}, "sound/usb", 0},
		{[]string{"sound/soc/codecs/foo.c"}, "sound/soc", -2},
		{[]string{"arch/x86/kvm/x86.c"}, "arch/x86/kvm", 4},
		{[]string{"arch/arm64/kernel/setup.c"}, "arch/arm64", 0},
		{[]string{"kernel/bpf/verifier.c"}, "kernel/bpf", 6},
		{[]string{"kernel/fork.c"}, "kernel", 4},
		{[]string{"tools/testing/selftests/net/foo.c"}, "tools", -15},
		{[]string{"tools/perf/foo.c", "mm/slub.c"}, "mm", 5},
	}
	for _, tt := range tests {
		got, ok := subsystemOf(tt.files)
		if !ok || got.name != tt.name || got.points != tt.points {
			t.Errorf("subsystemOf(%q) = %+v, %v; want %s %v", tt.files, got, ok, tt.name, tt.points)
		}
	}
	for _, files := range [][]string{nil, {"MAINTAINERS"}, {"Makefile"}, {"netfilter.c"}} {
		if got, ok := subsystemOf(files); ok {
			t.Errorf("subsystemOf(%q) = %+v, want none", files, got)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		text string
		want string // "" for none
	}{
		{"net: fix use-after-free in foo", "use-after-free"},
		{"BUG: KASAN: slab-use-after-free in foo_release+0x12/0x40", "use-after-free"},
		{"Use After Free in the error path", "use-after-free"},
		{"fix UAF on close", "use-after-free"},
		{"UAFS are not a word", ""},
		{"fix double-free of skb", "double free"},
		{"This can lead to out of bounds writes since frames", "out-of-bounds write"},
		{"BUG: KASAN: slab-out-of-bounds in foo", "out-of-bounds access"},
		{"UBSAN: shift-out-of-bounds in foo", "integer overflow"},
		{"UBSAN: array-index-out-of-bounds in foo", "out-of-bounds access"},
		{"BUG: kernel NULL pointer dereference, address: 0000000000000008", "NULL pointer dereference"},
		{"general protection fault, probably for non-canonical address", "kernel crash"},
		{"it can be used to leak kernel memory via specially-crafted report", "information leak"},
		{"KMSAN: uninit-value in foo", "information leak"},
		{"fix a race condition between open and close", "race condition"},
		{"ftrace: fix tracing of events", ""},
		{"WARNING: CPU: 0 PID: 1 at net/core/dev.c", "kernel warning"},
		{"possible circular locking dependency detected ... deadlock", "hang or deadlock"},
		{"unreferenced object 0xffff (size 64): memory leak", "memory leak"},
		{"fix refcount leak in foo_probe", "memory leak"},
		{"fix memory leak and use-after-free", "use-after-free"},
		{"", ""},
		{"free", ""},
		{"oob", "out-of-bounds access"},
	}
	for _, tt := range tests {
		c := classify(tt.text, "")
		got := ""
		if c.class >= 0 {
			got = classes[c.class].name
		}
		if got != tt.want {
			t.Errorf("classify(%q) = %q, want %q", tt.text, got, tt.want)
		}
		// The description alone says the same, and so does a CNA
		// description repeating the title.
		if d := classify("", tt.text); d != c {
			t.Errorf("classify(\"\", %q) = %+v, want %+v", tt.text, d, c)
		}
		if d := classify(tt.text, cnaPreamble+tt.text+"\n\nThe fix."); d != c {
			t.Errorf("classify(%q, preamble+title) = %+v, want %+v", tt.text, d, c)
		}
	}
}

// TestUserNamespaces uses PR paragraphs like the CNA's.
func TestUserNamespaces(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"PR:L - Configuring nft chains requires CAP_NET_ADMIN, but this is obtainable by an unprivileged user in a new network namespace via unshare -Urn, so only low privileges are truly needed.", true},
		{"PR:L - The netlink op is gated by GENL_UNS_ADMIN_PERM, which an unprivileged user can obtain in their own user/network namespace via `unshare -Urn`.", true},
		{"PR:L - A basic unprivileged user can mount a private BinderFS instance through a user namespace; no capability in the initial user namespace is required.", true},
		{"PR:L - overlayfs is FS_USERNS_MOUNT, so any user can mount it.", true},
		{"PR:H - CIFS is not marked FS_USERNS_MOUNT, so mounting requires real CAP_SYS_ADMIN. Unprivileged user namespaces do not provide access to this path.", false},
		{"PR:H - This cannot be obtained through user namespaces since it requires the Xen device node.", false},
		{"PR:L - Creating AF_SMC sockets requires only an unprivileged local account; user namespaces are not required.", false},
		{"PR:L - Any local user can open /dev/dri/renderD128.", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := userNamespaces(tt.text); got != tt.want {
			t.Errorf("userNamespaces(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestExploitedIn(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{
		{"in-the-wild exploitation confirms it is reliably winnable", inTheWild},
		{"as in the observed real-world exploit", inTheWild},
		{"Real-world exploitation of this exact bug", inTheWild},
		{"this bug was exploited in the wild", inTheWild},
		{"a public exploit achieved root on Fedora 35", public},
		{"public exploits confirm this; in-the-wild exploitation too", inTheWild},
		{"Exploitation requires local access", notExploited},
		{"the race has been hit in the wild with real hardware", notExploited},
		{"xploit", notExploited},
		{"", notExploited},
	}
	for _, tt := range tests {
		if got := exploitedIn(tt.text); got != tt.want {
			t.Errorf("exploitedIn(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

// matchSlow is the matcher's definition, a byte at a time: the oracle for
// the SWAR version.
func matchSlow(phrases map[string]uint32, s string) uint32 {
	var found uint32
	for i := 0; i < len(s); i++ {
		if !letters[s[i]] || (i > 0 && (letters[s[i-1]] || s[i-1] == '-')) {
			continue
		}
		for k, b := range phrases {
			text, wordEnd := strings.CutSuffix(k, "$")
			end := i + len(text)
			if hasPrefixFold(s[i:], text) && (!wordEnd || end == len(s) || !letters[s[end]]) {
				found |= b
			}
		}
	}
	return found
}

func TestMatcher(t *testing.T) {
	phrases := map[string]uint32{"use-after-free": 1, "uaf$": 2, "bug:": 4, "out-of-bounds": 8, "oob$": 16, "leak": 32, "null pointer": 64}
	m := newMatcher(phrases)
	// Pieces that make word starts fall on every offset of a chunk, next
	// to hyphens, case changes and UTF-8 bytes.
	pieces := []string{"use-after-free", "USE-after-FREE", "uaf", "uafs", "bug:", "BUG", "out-of-bounds", "slab-out-of-bounds",
		"oob", "-", " ", "\n", "é", "\xff", "x", "ab", "leak", "Leaks", "null", "pointer", "null pointer", "NULL  pointer", "0x1f", "_"}
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 20000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := m.match(s), matchSlow(phrases, s); got != want {
			t.Fatalf("case %d: match(%q) = %b, want %b", n, s, got, want)
		}
	}
}

func TestMatcherRejectsBadPhrases(t *testing.T) {
	for _, p := range []string{"ab", "-ab", "Abc", "9ab"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("newMatcher(%q) did not panic", p)
				}
			}()
			newMatcher(map[string]uint32{p: 1})
		}()
	}
}

func ExampleScore() {
	rec := &vulns.Record{
		ID:           "CVE-2024-53104",
		Status:       vulns.StatusPublished,
		Title:        "media: uvcvideo: Skip parsing frames of type UVC_VS_UNDEFINED in uvc_parse_format",
		Description:  "This can lead to out of bounds writes since frames of this type were not taken into account",
		ProgramFiles: []string{"drivers/media/usb/uvc/uvc_driver.c"},
	}
	kev, _ := LoadKEV(strings.NewReader(`{"vulnerabilities":[{"cveID":"CVE-2024-53104","dateAdded":"2025-02-05"}]}`))
	p := Score(rec, Inputs{KEV: kev, Placement: Placement{Where: InModules, Modules: []string{"uvcvideo"}}})
	fmt.Println(p.Score, p.Tier)
	for _, r := range p.Reasons {
		fmt.Println("-", r)
	}
	// Output:
	// 93.3 critical
	// - in CISA KEV since 2025-02-05
	// - no CNA score: estimated from subsystem and text
	// - text names an out-of-bounds write
	// - subsystem drivers/media/usb: USB, attacked with malicious devices
	// - only in module uvcvideo (loaded on demand)
}
