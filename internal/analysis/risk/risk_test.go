package risk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func corpusFix(t *testing.T, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", id+".patch"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func codes(s Score) map[string]Reason {
	m := map[string]Reason{}
	for _, r := range s.Reasons {
		m[r.Code] = r
	}
	return m
}

// TestCorpusOrdering scores real fixes: a one-line bounds check in a USB
// network driver must score below a fix that swaps a rwlock for RCU and
// adds READ_ONCE/WRITE_ONCE in the networking core.
func TestCorpusOrdering(t *testing.T) {
	tests := []struct {
		id        string
		wantLevel string
		want      []string // reason codes that must be there
		notWant   []string
	}{
		// net1080: `if (packet_len >= skb->len || …)`.
		{"CVE-2026-64547", LevelLow, []string{CodeFunctions, CodeLines}, []string{CodeLocking, CodeMemoryOrdering, CodeHotPath}},
		// skbuff: read_lock_bh → rcu_read_lock, READ_ONCE/WRITE_ONCE, sock.h.
		{"CVE-2026-43216", LevelHigh, []string{CodeLocking, CodeMemoryOrdering, CodeHotPath, CodeHeader, CodeFunctions, CodeLines}, nil},
		// rtmutex: a NULL check and a return-value test in kernel/locking,
		// next to (unchanged) lock calls: hot, but no primitive changed.
		{"CVE-2026-53163", LevelMedium, []string{CodeHotPath, CodeFunctions}, []string{CodeLocking}},
	}
	scores := map[string]Score{}
	for _, tt := range tests {
		s, err := Assess(Input{Diff: corpusFix(t, tt.id)})
		if err != nil {
			t.Fatalf("Assess(%s): %v", tt.id, err)
		}
		scores[tt.id] = s
		t.Logf("%s: %d %s", tt.id, s.Total, s.Level)
		for _, r := range s.Reasons {
			t.Logf("  %-24s %3d  %s", r.Code, r.Points, r.Detail)
		}
		if s.Level != tt.wantLevel {
			t.Errorf("Assess(%s).Level = %q (total %d), want %q", tt.id, s.Level, s.Total, tt.wantLevel)
		}
		got := codes(s)
		for _, c := range tt.want {
			if r, ok := got[c]; !ok || r.Detail == "" || r.Points <= 0 {
				t.Errorf("Assess(%s): no reason %s with points and detail; reasons %v", tt.id, c, s.Reasons)
			}
		}
		for _, c := range tt.notWant {
			if _, ok := got[c]; ok {
				t.Errorf("Assess(%s): unexpected reason %s: %+v", tt.id, c, got[c])
			}
		}
		sum := 0
		for _, r := range s.Reasons {
			sum += r.Points
		}
		if sum != s.Total {
			t.Errorf("Assess(%s): reasons sum to %d, Total %d", tt.id, sum, s.Total)
		}
	}
	if lo, hi := scores["CVE-2026-64547"], scores["CVE-2026-43216"]; lo.Total >= hi.Total {
		t.Errorf("bounds check scores %d, locking change %d: want the first lower", lo.Total, hi.Total)
	}
	lock := codes(scores["CVE-2026-43216"])[CodeLocking].Detail
	for _, p := range []string{"rcu_read_lock ×1", "rcu_read_unlock ×1", "read_lock_bh ×1", "read_unlock_bh ×1"} {
		if !strings.Contains(lock, p) {
			t.Errorf("CVE-2026-43216 locking detail %q does not name %q", lock, p)
		}
	}
	fns := codes(scores["CVE-2026-43216"])[CodeFunctions].Detail
	if !strings.Contains(fns, "net/core/skbuff.c:skb_may_tx_timestamp") || !strings.Contains(fns, "include/net/sock.h:sk_set_socket") {
		t.Errorf("CVE-2026-43216 functions detail %q does not name the changed functions", fns)
	}
}

// TestWholeCorpus scores every corpus fix: all parse, and the levels are
// spread (a scorer that calls everything high tells a reviewer nothing).
func TestWholeCorpus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "*.patch"))
	if err != nil || len(paths) < 300 {
		t.Fatalf("corpus: %d patches, %v", len(paths), err)
	}
	levels := map[string]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Assess(Input{Diff: b})
		if err != nil {
			t.Errorf("Assess(%s): %v", filepath.Base(p), err)
			continue
		}
		levels[s.Level]++
	}
	t.Logf("levels over %d corpus fixes: %v", len(paths), levels)
	for _, l := range []string{LevelLow, LevelMedium, LevelHigh} {
		if levels[l] < len(paths)/20 {
			t.Errorf("only %d of %d fixes are %s: %v", levels[l], len(paths), l, levels)
		}
	}
}

// TestReasons checks each reason on small diffs written for it.
func TestReasons(t *testing.T) {
	tests := []struct {
		name string
		diff string
		code string
		near refusal.Code
		in   string // a substring of the detail
	}{
		{"new static variable", `--- a/drivers/x/a.c
+++ b/drivers/x/a.c
@@ -10,2 +10,3 @@
 #include <linux/module.h>
+static int retries __read_mostly = 3;
 
`, CodeNewData, refusal.ChangedData, "drivers/x/a.c: retries"},
		{"new lock object", `--- a/drivers/x/a.c
+++ b/drivers/x/a.c
@@ -10,2 +10,3 @@
 #include <linux/module.h>
+static DEFINE_MUTEX(probe_lock);
 
`, CodeNewData, refusal.ChangedData, "probe_lock"},
		{"table entry", `--- a/drivers/x/a.c
+++ b/drivers/x/a.c
@@ -10,4 +10,5 @@
 static const struct pci_device_id ids[] = {
 	{ PCI_DEVICE(0x1, 0x2) },
+	{ PCI_DEVICE(0x1, 0x3) },
 	{ }
 };
`, CodeChangedData, refusal.ChangedData, "ids"},
		{"struct member", `--- a/include/linux/x.h
+++ b/include/linux/x.h
@@ -10,3 +10,4 @@
 struct widget {
 	int a;
+	int b;
 };
`, CodeStructLayout, refusal.ChangedData, "struct widget"},
		{"init code", `--- a/drivers/x/a.c
+++ b/drivers/x/a.c
@@ -10,3 +10,4 @@
 static int __init widget_init(void)
 {
+	pr_info("hello\n");
 	return 0;
`, CodeInitExit, refusal.InitExit, "widget_init"},
		{"new function", `diff --git a/drivers/x/a.c b/drivers/x/a.c
--- a/drivers/x/a.c
+++ b/drivers/x/a.c
@@ -10,2 +10,6 @@
 
+static bool widget_ok(int n)
+{
+	return n < 4;
+}
 
`, CodeNewFunction, "", "widget_ok"},
		{"barrier", `--- a/kernel/sched/core.c
+++ b/kernel/sched/core.c
@@ -10,2 +10,3 @@ static void ttwu(struct task_struct *p)
 {
+	smp_mb__after_spinlock();
 	p->on_cpu = 0;
`, CodeMemoryOrdering, "", "smp_mb__after_spinlock ×1"},
		{"hot path from git section", `--- a/kernel/sched/core.c
+++ b/kernel/sched/core.c
@@ -10,2 +10,2 @@ static void ttwu(struct task_struct *p)
 {
-	p->on_cpu = 0;
+	p->on_cpu = 1;
`, CodeHotPath, "", "scheduler"},
		{"assembly", `--- a/arch/x86/entry/entry_64.S
+++ b/arch/x86/entry/entry_64.S
@@ -10,1 +10,1 @@
-	nop
+	ret
`, CodeAssembly, refusal.Assembly, "entry_64.S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Assess(Input{Diff: []byte(tt.diff)})
			if err != nil {
				t.Fatalf("Assess: %v", err)
			}
			r, ok := codes(s)[tt.code]
			if !ok {
				t.Fatalf("Assess(%s) reasons = %+v, want %s", tt.name, s.Reasons, tt.code)
			}
			if r.Near != tt.near || !strings.Contains(r.Detail, tt.in) {
				t.Errorf("Assess(%s) %s = %+v, want near %q and detail naming %q", tt.name, tt.code, r, tt.near, tt.in)
			}
		})
	}
}

func TestMovedCallNotCounted(t *testing.T) {
	diff := `--- a/net/core/dev.c
+++ b/net/core/dev.c
@@ -10,3 +10,3 @@ static void f(void)
 {
-	spin_lock(&l);
 	x = 1;
+	spin_lock(&l);
`
	s, err := Assess(Input{Diff: []byte(diff)})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := codes(s)[CodeLocking]; ok {
		t.Errorf("a moved spin_lock counted as a locking change: %+v", r)
	}
}

func TestGeneratorFunctions(t *testing.T) {
	s, err := Assess(Input{
		Diff:      corpusFix(t, "CVE-2026-64547"),
		Functions: map[string][]string{"net1080": {"net1080_rx_fixup", "nc_vendor_read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := codes(s)[CodeFunctions]
	if r.Points != 6 || !strings.Contains(r.Detail, "net1080:net1080_rx_fixup") || !strings.Contains(r.Detail, "patched by the generator") {
		t.Errorf("functions reason = %+v, want the generator's two functions", r)
	}
}

func TestBadDiff(t *testing.T) {
	for _, d := range []string{"", "hello\n", "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n x\n"} {
		if _, err := Assess(Input{Diff: []byte(d)}); err == nil {
			t.Errorf("Assess(%q) = nil error, want one", d)
		}
	}
}
