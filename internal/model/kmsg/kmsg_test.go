package kmsg

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Record
	}{
		{"6,1234,5678901,-;message text\n", Record{Level: LevelInfo, Seq: 1234, Time: 5678901 * time.Microsecond, Timestamped: true, Flags: "-", Text: "message text"}},
		{"6,182,915544,-;acpi PNP0A03:00: _OSC\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n", Record{Level: LevelInfo, Seq: 182, Time: 915544 * time.Microsecond, Timestamped: true, Flags: "-", Text: "acpi PNP0A03:00: _OSC", Dict: map[string]string{"SUBSYSTEM": "acpi", "DEVICE": "+acpi:PNP0A03:00"}}},
		{"6,565,8413761,-;provoke: bytes \\x01\\x7f tab\\x09end", Record{Level: LevelInfo, Seq: 565, Time: 8413761 * time.Microsecond, Timestamped: true, Flags: "-", Text: "provoke: bytes \x01\x7f tab\tend"}},
		{"12,3,0,c,caller=T42,more;from user", Record{Level: LevelWarning, Facility: FacilityUser, Seq: 3, Timestamped: true, Flags: "c", Caller: "T42", Text: "from user"}},
		{`4,1,2,-;a\xZZ b\x5c`, Record{Level: LevelWarning, Seq: 1, Time: 2 * time.Microsecond, Timestamped: true, Flags: "-", Text: `a\xZZ b\`}},
	} {
		got, err := ParseRecord([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRecord(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRecordErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no ';'"},
		{"6,1,2;text", "has 3 fields"},
		{"x,1,2,-;text", "bad priority"},
		{",1,2,-;text", "bad priority"},
		{"6,-1,2,-;text", "bad sequence number"},
		{"6,1,99999999999999999999,-;text", "bad timestamp"},
		{"6,1,2,-;text\nSUBSYSTEM=x", "does not start with a space"},
		{"6,1,2,-;text\n novalue", "not KEY=value"},
	} {
		_, err := ParseRecord([]byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), "parse record: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRecord(%q) error = %v, want one saying %q", tc.in, err, tc.want)
		}
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Record
	}{
		{"[   12.345678] message", Record{Level: LevelUnknown, Time: 12345678 * time.Microsecond, Timestamped: true, Text: "message"}},
		{"[    8.237863]  provoke_init+0x25/0x1000 [provoke]\r", Record{Level: LevelUnknown, Time: 8237863 * time.Microsecond, Timestamped: true, Text: " provoke_init+0x25/0x1000 [provoke]"}},
		{"<4>[    1.000000] WARNING: x", Record{Level: LevelWarning, Time: time.Second, Timestamped: true, Text: "WARNING: x"}},
		{"[    0.000000][    T0] Linux version", Record{Level: LevelUnknown, Timestamped: true, Caller: "T0", Text: "Linux version"}},
		{"[    5.100000] [    C1] rcu: x", Record{Level: LevelUnknown, Time: 5100 * time.Millisecond, Timestamped: true, Caller: "C1", Text: "rcu: x"}},
		{"script: WARNING: user space", Record{Level: LevelUnknown, Text: "script: WARNING: user space"}},
		{"<6>no timestamp", Record{Level: LevelInfo, Text: "no timestamp"}},
		{"[ 1.x] not a timestamp", Record{Level: LevelUnknown, Text: "[ 1.x] not a timestamp"}},
		{"[12] no fraction", Record{Level: LevelUnknown, Text: "[12] no fraction"}},
	} {
		if got := ParseLine(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLine(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseTextCRLF(t *testing.T) {
	lf := readFixture(t, "warning-console.txt")
	a, b := ParseText(lf), ParseText(strings.ReplaceAll(lf, "\n", "\r\n"))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("ParseText differs between LF and CRLF line ends")
	}
	if len(a) != 46 {
		t.Errorf("ParseText(warning fixture) gave %d records, want 46", len(a))
	}
}

func TestBootConsole(t *testing.T) {
	recs := ParseText(readFixture(t, "boot-console.txt"))
	kern := Kernel(recs)
	if len(kern) == 0 || len(kern) == len(recs) {
		t.Fatalf("boot console: %d kernel records of %d, want some but not all (SeaBIOS lines)", len(kern), len(recs))
	}
	if !strings.HasPrefix(kern[0].Text, "Linux version 6.1.0-50-cloud-amd64") {
		t.Errorf("first kernel line %q, want the Linux version", kern[0].Text)
	}
	if p := Problems(readFixture(t, "boot-console.txt")); len(p) != 0 {
		t.Errorf("Problems(boot) = %v, want none", p)
	}
}

func TestKmsgScanner(t *testing.T) {
	data := readFixture(t, "kmsg-records.txt")
	recs, err := ParseKmsg(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 78 {
		t.Errorf("ParseKmsg(fixture) gave %d records, want 78", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq || recs[i].Time < recs[i-1].Time {
			t.Errorf("record %d (seq %d) out of order after seq %d", i, recs[i].Seq, recs[i-1].Seq)
		}
	}
	if d := recs[5].Dict; d["SUBSYSTEM"] != "acpi" || d["DEVICE"] != "+acpi:PNP0A03:00" {
		t.Errorf("record 5 dict = %v, want SUBSYSTEM=acpi DEVICE=+acpi:PNP0A03:00", d)
	}
	last := recs[len(recs)-1]
	if last.Text != "provoke: bytes \x01\x7f tab\tend" || last.Level != LevelInfo {
		t.Errorf("last record = %+v, want the escaped bytes decoded", last)
	}
	reps := Reports(recs)
	if len(reps) != 1 || reps[0].Kind != KindWarning || reps[0].RIP.Func != "provoke_warn" {
		t.Errorf("Reports(kmsg) = %+v, want one WARNING at provoke_warn", reps)
	}

	_, err = ParseKmsg("6,1,2,-;ok\ngarbage\n6,2,3,-;ok\n")
	if err == nil || !strings.Contains(err.Error(), "1 malformed") {
		t.Errorf("ParseKmsg with a garbage line: error %v, want 1 malformed", err)
	}
}

func TestScannerLongLine(t *testing.T) {
	long := "[    1.000000] " + strings.Repeat("x", 3*MaxLineLen) + "\n[    2.000000] next\n"
	s := NewScanner(strings.NewReader(long))
	var got []Record
	for s.Scan() {
		got = append(got, s.Record())
	}
	if s.Err() != nil || len(got) != 2 || len(got[0].Text) != MaxTextLen || !got[0].Truncated || got[1].Text != "next" {
		t.Errorf("long line: %d records, err %v, want the first cut to %d and the second intact", len(got), s.Err(), MaxTextLen)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Event
	}{
		{"Kernel panic - not syncing: Fatal exception", Event{Kind: KindPanic}},
		{"Oops: 0002 [#1] PREEMPT SMP NOPTI", Event{Kind: KindOops}},
		{"BUG: kernel NULL pointer dereference, address: 0000000000000000", Event{Kind: KindBUG}},
		{"kernel BUG at /tmp/capture/prov/provoke.c:16!", Event{Kind: KindBUG}},
		{"WARNING: CPU: 0 PID: 93 at /tmp/capture/prov/provoke.c:13 provoke_warn+0x11/0x18 [provoke]", Event{Kind: KindWarning}},
		{"general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI", Event{Kind: KindGPF}},
		{"INFO: task insmod:96 blocked for more than 3 seconds.", Event{Kind: KindHungTask, Comm: "insmod", PID: 96}},
		{"Call Trace:", Event{Kind: KindCallTrace}},
		{"watchdog: BUG: soft lockup - CPU#1 stuck for 3s! [insmod:95]", Event{Kind: KindSoftLockup, Comm: "insmod", PID: 95}},
		{"rcu: INFO: rcu_preempt self-detected stall on CPU", Event{Kind: KindRCUStall}},
		{"rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", Event{Kind: KindRCUStall}},
		{"Disabling lock debugging due to kernel taint", Event{Kind: KindTaint}},
		{"livepatch_sample: loading out-of-tree module taints kernel.", Event{Kind: KindTaint, Module: "livepatch_sample"}},
		{"livepatch_sample: tainting kernel with TAINT_LIVEPATCH", Event{Kind: KindTaint, Module: "livepatch_sample"}},
		{"livepatch_sample: module verification failed: signature and/or required key missing - tainting kernel", Event{Kind: KindTaint, Module: "livepatch_sample"}},
		{"CPU: 0 PID: 93 Comm: insmod Tainted: G           OE K    6.1.0-50-cloud-amd64 #1  Debian 6.1.176-1", Event{Kind: KindTaint, Taint: "GOEK"}},
		{"CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-50-cloud-amd64 #1 Debian 6.1.176-1", Event{}},
		{"livepatch: enabling patch 'livepatch_sample'", Event{Kind: KindPatchEnable, Patch: "livepatch_sample"}},
		{"livepatch: 'livepatch_sample': starting patching transition", Event{Kind: KindPatchTransition, Patch: "livepatch_sample"}},
		{"livepatch: 'livepatch_sample': patching complete", Event{Kind: KindPatchComplete, Patch: "livepatch_sample"}},
		{"livepatch: 'livepatch_sample': starting unpatching transition", Event{Kind: KindUnpatchTransition, Patch: "livepatch_sample"}},
		{"livepatch: 'livepatch_sample': unpatching complete", Event{Kind: KindUnpatchComplete, Patch: "livepatch_sample"}},
		{"livepatch: 'livepatch_sample': initializing patching transition", Event{}},
		{"livepatch: klp_try_switch_task: kworker/0:1:23 is sleeping on function cmdline_proc_show", Event{Kind: KindPatchBlocked, Comm: "kworker/0:1", PID: 23, Func: "cmdline_proc_show", Reason: "is sleeping on function"}},
		{"livepatch: klp_try_switch_task: my task:7 has an unreliable stack", Event{Kind: KindPatchBlocked, Comm: "my task", PID: 7, Reason: "has an unreliable stack"}},
		{"livepatch: failed to enable patch 'p1'", Event{Kind: KindLivepatchError, Patch: "p1"}},
		{"livepatch: patch 'p1' failed for module 'ext4', refusing to load module 'ext4'", Event{Kind: KindLivepatchError, Patch: "p1"}},
		{"p1: klp_enable_patch failed: -22", Event{Kind: KindLivepatchError}},
		{"script: nothing here", Event{}},
	} {
		if got := Classify(tc.in); got != tc.want {
			t.Errorf("Classify(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestLivepatchConsole(t *testing.T) {
	var kinds []Kind
	for _, r := range Kernel(ParseText(readFixture(t, "livepatch-console.txt"))) {
		if e := Classify(r.Text); e.Kind != KindNone {
			if e.Patch != "" && e.Patch != "livepatch_sample" {
				t.Errorf("Classify(%q).Patch = %q, want livepatch_sample", r.Text, e.Patch)
			}
			kinds = append(kinds, e.Kind)
		}
	}
	want := []Kind{KindTaint, KindTaint, KindTaint, KindPatchEnable, KindPatchTransition, KindPatchComplete, KindUnpatchTransition, KindUnpatchComplete}
	if !slices.Equal(kinds, want) {
		t.Errorf("livepatch console kinds = %v, want %v", kinds, want)
	}
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Frame
		ok   bool
	}{
		{" provoke_init+0x25/0x1000 [provoke]", Frame{Func: "provoke_init", Off: 0x25, Len: 0x1000, Module: "provoke"}, true},
		{" ? do_sys_openat2+0x9b/0x170", Frame{Func: "do_sys_openat2", Off: 0x9b, Len: 0x170, Unreliable: true}, true},
		{" ? 0xffffffffc04e7000", Frame{Addr: 0xffffffffc04e7000, Unreliable: true}, true},
		{"foo.cold+0x1/0x2 [my-mod 0123abcd]", Frame{Func: "foo.cold", Off: 1, Len: 2, Module: "my-mod"}, true},
		{"[<ffffffff81000000>] old_style+0x10/0x20", Frame{Func: "old_style", Off: 0x10, Len: 0x20}, true},
		{" <TASK>", Frame{}, false},
		{"RIP: 0033:0x47fbe9", Frame{}, false},
		{"RAX: 0000000000000000 RBX: ff3234f61ff3c4b0", Frame{}, false},
		{"f+0x11111111111111111/0x1", Frame{}, false},
	} {
		got, ok := ParseFrame(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseFrame(%q) = %+v, %v, want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && strings.TrimSpace(tc.in) == got.String() {
			continue
		}
	}
}

func TestParseModules(t *testing.T) {
	mods, last := ParseModules("Modules linked in: a b(OE) c [last unloaded: d]")
	want := []Module{{"a", ""}, {"b", "OE"}, {"c", ""}}
	if !slices.Equal(mods, want) || last != "d" {
		t.Errorf("ParseModules = %v, %q, want %v, d", mods, last, want)
	}
	mods, last = ParseModules("Modules linked in: provoke(OE+) [last unloaded: livepatch_sample(OEK)]")
	if !slices.Equal(mods, []Module{{"provoke", "OE+"}}) || last != "livepatch_sample" {
		t.Errorf("ParseModules(real) = %v, %q", mods, last)
	}
}

// wantReport is what a fixture's single (first) report must say.
type wantReport struct {
	fixture            string
	n                  int
	kind               Kind
	at, comm, tainted  string
	cpu, pid           int
	rip                string
	firstFrame, module string
	lastUnloaded       string
	complete           bool
}

func TestReportsRealLogs(t *testing.T) {
	for _, w := range []wantReport{
		{"warning-console.txt", 1, KindWarning, "/tmp/capture/prov/provoke.c:13", "insmod", "GOEK", 0, 93, "provoke_warn+0x11/0x18 [provoke]", "provoke_init+0x25/0x1000 [provoke]", "provoke", "livepatch_sample", true},
		{"oops-console.txt", 1, KindBUG, "", "insmod", "GWOEK", 0, 99, "provoke_oops+0x5/0x15 [provoke]", "provoke_init+0x5f/0x1000 [provoke]", "provoke", "livepatch_sample", true},
		{"bug-on-console.txt", 1, KindBUG, "/tmp/capture/prov/provoke.c:16", "insmod", "GOEL", 1, 96, "provoke_bug+0x5/0x7 [provoke]", "provoke_init+0x7c/0x1000 [provoke]", "provoke", "", true},
		{"hung-task-console.txt", 1, KindHungTask, "", "insmod", "GWOEK", -1, 96, "0x0", "__schedule+0x34d/0x9e0", "", "", true},
		{"soft-lockup-console.txt", 1, KindSoftLockup, "", "insmod", "GOE", 1, 95, "delay_tsc+0x33/0xa0", "provoke_spin+0x29/0xfc0 [provoke]", "provoke", "", true},
		{"rcu-stall-console.txt", 1, KindRCUStall, "", "insmod", "GOEL", 1, 95, "delay_tsc+0x33/0xa0", "provoke_spin+0x29/0xfc0 [provoke]", "", "", true},
	} {
		reps := Reports(ParseText(readFixture(t, w.fixture)))
		if len(reps) != w.n {
			t.Errorf("%s: %d reports, want %d", w.fixture, len(reps), w.n)
			continue
		}
		r := reps[0]
		got := wantReport{w.fixture, len(reps), r.Kind, r.At, r.Comm, r.Tainted, r.CPU, r.PID, r.RIP.String(), "", "", r.LastUnloaded, r.Complete}
		if len(r.Trace) > 0 {
			got.firstFrame = r.Trace[0].String()
		}
		if len(r.Modules) > 0 {
			got.module = r.Modules[0].Name
		}
		if got != w {
			t.Errorf("Reports(%s)[0] = %+v, want %+v", w.fixture, got, w)
		}
		if r.Release != "6.1.0-50-cloud-amd64" || r.Build != "#1 Debian 6.1.176-1" {
			t.Errorf("%s: release %q build %q", w.fixture, r.Release, r.Build)
		}
		if len(r.Lines) == 0 || r.Lines[0] != r.Header {
			t.Errorf("%s: Lines do not start with the header", w.fixture)
		}
		if !r.Involves("provoke", nil) || r.Involves("ext4", []string{"ext4_readdir"}) {
			t.Errorf("%s: Involves(provoke) false or Involves(ext4) true", w.fixture)
		}
	}
}

func TestReportsSplitAndSkipUserSpace(t *testing.T) {
	// Two real reports back to back, with user space's lines between.
	text := readFixture(t, "warning-console.txt") + "script: WARNING: not the kernel\n" + readFixture(t, "oops-console.txt") + readFixture(t, "hung-task-console.txt")
	var kinds []Kind
	for _, r := range Reports(ParseText(text)) {
		kinds = append(kinds, r.Kind)
	}
	if want := []Kind{KindWarning, KindBUG, KindHungTask}; !slices.Equal(kinds, want) {
		t.Errorf("Reports(warning+oops+hung) kinds = %v, want %v", kinds, want)
	}
}

func TestInvolves(t *testing.T) {
	r := Report{RIP: Frame{Func: "cmdline_proc_show.cold", Off: 1, Len: 2}, Trace: []Frame{{Func: "seq_read_iter", Off: 1, Len: 2}, {Func: "livepatch_cmdline_proc_show", Module: "livepatch_sample", Unreliable: true}}}
	for _, tc := range []struct {
		module string
		funcs  []string
		want   bool
	}{
		{"livepatch-sample", nil, true},
		{"livepatch_sample", nil, true},
		{"other", []string{"cmdline_proc_show"}, true},
		{"other", []string{"seq_read_iter"}, true},
		{"other", []string{"proc_show", ""}, false},
		{"", nil, false},
	} {
		if got := r.Involves(tc.module, tc.funcs); got != tc.want {
			t.Errorf("Involves(%q, %q) = %v, want %v", tc.module, tc.funcs, got, tc.want)
		}
	}
}

// legacyProblems is vmtest.ParseProblems as it was before the move here,
// kept as the oracle Problems must agree with.
var legacyPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"Kernel panic", regexp.MustCompile(`Kernel panic - not syncing`)},
	{"Oops", regexp.MustCompile(`\bOops\b`)},
	{"BUG", regexp.MustCompile(`\bBUG: |kernel BUG at `)},
	{"WARNING", regexp.MustCompile(`\bWARNING: `)},
	{"general protection fault", regexp.MustCompile(`general protection fault`)},
	{"hung task", regexp.MustCompile(`INFO: task .* blocked for more than`)},
	{"Call Trace", regexp.MustCompile(`Call Trace:`)},
}

var legacyKernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)

func legacyProblems(log string) []Problem {
	pats, kernelLine := legacyPatterns, legacyKernelLine
	var out []Problem
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if !kernelLine.MatchString(line) {
			continue
		}
		for _, p := range pats {
			if p.re.MatchString(line) {
				out = append(out, Problem{Kind: p.kind, Line: line})
				break
			}
		}
	}
	return out
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Problem
	}{
		{"[    1.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\r\nscript WARNING: x\n", []Problem{{"WARNING", "[    1.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1"}}},
		{"[ 2.5] watchdog: BUG: soft lockup - CPU#0 stuck for 3s! [a:1]", []Problem{{"BUG", "[ 2.5] watchdog: BUG: soft lockup - CPU#0 stuck for 3s! [a:1]"}}},
		{"[ 3.0] Oops: BUG: both\n", []Problem{{"Oops", "[ 3.0] Oops: BUG: both"}}},
		{"<4>[ 1.0] WARNING: prefixed lines never counted\n[ 1.0][ T1] WARNING: nor caller ids", nil},
	} {
		if got := Problems(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Problems(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, f := range []string{"warning-console.txt", "oops-console.txt", "hung-task-console.txt", "soft-lockup-console.txt", "rcu-stall-console.txt", "bug-on-console.txt", "livepatch-console.txt", "boot-console.txt"} {
		text := readFixture(t, f)
		if got, want := Problems(text), legacyProblems(text); !reflect.DeepEqual(got, want) {
			t.Errorf("Problems(%s) = %v, want %v", f, got, want)
		}
	}
	if got := Problems(readFixture(t, "livepatch-console.txt")); len(got) != 0 {
		t.Errorf("Problems(livepatch) = %v, want none (the script's WARNING is user space)", got)
	}
}

func TestBlockers(t *testing.T) {
	dmesg := "[ 1.0] livepatch: klp_try_switch_task: kthr:12 is sleeping on function f1\n" +
		"[ 1.1] livepatch: klp_try_switch_task: kthr:12 is sleeping on function f1\n" +
		"[ 1.2] livepatch: klp_try_switch_task: bash:7 is running\n" +
		"[ 1.3] livepatch: klp_try_switch_task: sh:9 is sleeping on function f2\n"
	want := []string{"kthr:12 in f1", "sh:9 in f2"}
	if got := Blockers(dmesg); !slices.Equal(got, want) {
		t.Errorf("Blockers(%q) = %q, want %q", dmesg, got, want)
	}
	if got := Blockers("nothing"); got != nil {
		t.Errorf("Blockers(nothing) = %q, want nil", got)
	}
}
