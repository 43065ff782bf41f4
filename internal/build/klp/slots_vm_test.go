package klp_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// qdiscTool builds testdata/qdisc, static, for the VM.
func qdiscTool(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(t.TempDir(), "qdisc")
	build := exec.Command("go", "build", "-o", tool, "./testdata/qdisc")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the qdisc tool: %v\n%s", err, out)
	}
	return tool
}

// TestRepointedOpsPointer: the sch_codel fix (CVE-2026-74267) points
// codel_qdisc_ops.peek at a function it adds. The patch loads before
// sch_codel; when sch_codel loads, its callbacks repoint the pointer, so
// a tbf parent asking its codel child for the next packet runs the
// patch's codel_peek. Once the patch is disabled the old pointer is back:
// traffic still flows and nothing of the removed module runs.
func TestRepointedOpsPointer(t *testing.T) {
	k := debianKernel(t)
	const name = "tt_codel_peek"
	ko, res := build(t, k, name, filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-74267.patch"))
	want := klp.SlotSwap{Data: "codel_qdisc_ops", Offset: 0x38, Before: "qdisc_peek_dequeued", After: "codel_peek", InPatch: true}
	if len(res.Units) != 1 || len(res.Units[0].Repointed) != 1 || res.Units[0].Repointed[0] != want {
		t.Fatalf("units = %+v, want one unit repointing %v", res.Units, want)
	}
	tool := qdiscTool(t)
	// tbf asks codel for the next packet only through its ops->peek:
	// codel_peek runs only if the pointer was repointed.
	exercise := vmcheck.Traced(name, "codel_exercise", `codel_exercise() {
	ip link set lo up
	/root/qdisc add lo && echo "qdisc-$1: ok"
	ping -c 3 -i 0.2 127.0.0.1 >/dev/null && echo "ping-$1: ok"
	/root/qdisc del lo || true
}`)
	kv := bootWithFiles(t, k, ko, name, exercise, []string{"sch_codel", "sch_tbf"}, vmtest.File{Path: "/root/qdisc", Source: tool, Mode: 0o755})
	if !strings.Contains(kv["later"], "sch_codel") || kv["objects"] != "sch_codel=1" {
		t.Errorf("later %q, objects %q: want sch_codel loaded after the patch and patched", kv["later"], kv["objects"])
	}
	for _, phase := range []string{"patched", "after"} {
		if kv["qdisc-"+phase] != "ok" || kv["ping-"+phase] != "ok" {
			t.Errorf("%s: qdisc %q, ping %q; want ok, ok", phase, kv["qdisc-"+phase], kv["ping-"+phase])
		}
	}
	if !slices.Contains(strings.Fields(kv["ran"]), "codel_peek") {
		t.Errorf("tbf never called the patch's codel_peek (ran: %q)", kv["ran"])
	}
}

// TestRepointedReplaced: cumulative patches and a repointed pointer. v2,
// carrying the same fix, replaces v1: it takes the pointer over (v1's
// callbacks are not called), so v1 unloads. v3 lacks the fix: the pointer
// keeps v2's code, so v2 must refuse to unload while it does.
func TestRepointedReplaced(t *testing.T) {
	k := debianKernel(t)
	fix := filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-74267.patch")
	v1, _ := build(t, k, "tt_codel_v1", fix)
	v2, _ := build(t, k, "tt_codel_v2", fix)
	v3, _ := build(t, k, "tt_codel_v3", "testdata/cmdline.patch")
	vm := k.VM()
	res, err := vmtest.Boot(context.Background(), vmtest.Config{
		Kernel: vm.Vmlinuz, ModulesDir: vm.ModulesDir, Available: []string{"sch_codel", "sch_tbf"},
		Files: []vmtest.File{
			{Path: "/root/tt_codel_v1.ko", Source: v1}, {Path: "/root/tt_codel_v2.ko", Source: v2},
			{Path: "/root/tt_codel_v3.ko", Source: v3}, {Path: "/root/qdisc", Source: qdiscTool(t), Mode: 0o755},
		},
		Script: `set -e
lp=/sys/kernel/livepatch
tr=/sys/kernel/tracing
wait_transition() {
	i=0
	while [ -e $lp/$1/transition ] && [ "$(cat $lp/$1/transition)" != 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
}
gone() {
	i=0
	while [ -e $lp/$1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	[ -e $lp/$1 ] && echo present || echo gone
}
# peeks MODULE KEY: traffic through tbf, and how often MODULE's codel_peek ran.
peeks() {
	echo ":mod:$1" > $tr/set_ftrace_filter
	echo function > $tr/current_tracer
	echo > $tr/trace
	ping -c 3 -i 0.2 127.0.0.1 >/dev/null && p=ok || p=failed
	echo "$2: $p $(grep -c ' codel_peek <-tbf_dequeue' $tr/trace || true)"
	echo nop > $tr/current_tracer
	echo > $tr/set_ftrace_filter
}
ip link set lo up
insmod /root/tt_codel_v1.ko
wait_transition tt_codel_v1
modprobe sch_codel
modprobe sch_tbf
/root/qdisc add lo
peeks tt_codel_v1 v1
insmod /root/tt_codel_v2.ko
wait_transition tt_codel_v2
echo "v1-replaced: $(gone tt_codel_v1)"
rmmod tt_codel_v1 && echo "rmmod-v1: ok"
peeks tt_codel_v2 v2
insmod /root/tt_codel_v3.ko
wait_transition tt_codel_v3
echo "v2-replaced: $(gone tt_codel_v2)"
rmmod tt_codel_v2 2>/dev/null && echo "rmmod-v2: ok" || echo "rmmod-v2: refused"
peeks tt_codel_v2 v3
echo 0 > $lp/tt_codel_v3/enabled
echo "v3-disabled: $(gone tt_codel_v3)"
rmmod tt_codel_v3 && echo "rmmod-v3: ok"
/root/qdisc del lo
`,
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	kv := vmcheck.Values(res.Output)
	t.Logf("VM values: %v", kv)
	for _, p := range res.Problems {
		t.Errorf("problem: %s", p.Line)
	}
	if res.ExitCode != 0 {
		t.Errorf("script exit %d:\n%s", res.ExitCode, cmdout.Tail(res.Console, 30))
	}
	for key, want := range map[string]string{"v1-replaced": "gone", "rmmod-v1": "ok", "v2-replaced": "gone", "rmmod-v2": "refused", "v3-disabled": "gone", "rmmod-v3": "ok"} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	for _, key := range []string{"v1", "v2", "v3"} {
		f := strings.Fields(kv[key])
		if len(f) != 2 || f[0] != "ok" || f[1] == "0" {
			t.Errorf("%s = %q, want traffic ok and the patch's codel_peek run", key, kv[key])
		}
	}
}

// TestRepointedSysctl: the tcp_reordering fix (CVE-2026-64422) gives two
// sysctls of ipv4_net_table, a per-namespace template, a bounded handler
// and its bounds (into sysctl_vals and init_net). Repointed, the initial
// namespace refuses 0 and values above tcp_max_reordering, and so does a
// namespace made while the patch is enabled (its copy is made from the
// repointed table by the patched init); once the patch is disabled, the
// old handler takes them again. The build warns that copies made before
// the patch keep the old pointers.
func TestRepointedSysctl(t *testing.T) {
	k := debianKernel(t)
	const name = "tt_tcp_reordering"
	ko, res := build(t, k, name, filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-64422.patch"))
	var repointed []string
	var warned bool
	for _, u := range res.Units {
		for _, sl := range u.Repointed {
			repointed = append(repointed, sl.String())
		}
		for _, w := range u.Warnings {
			warned = warned || strings.Contains(w, "ipv4_net_table is copied by ipv4_sysctl_init_net")
		}
	}
	if len(repointed) != 5 || !slices.Contains(repointed, "ipv4_net_table+0xca0: proc_dointvec → the running kernel's proc_dointvec_minmax") || !warned {
		t.Errorf("repointed %q (warned of copies: %v); want 5 pointers of ipv4_net_table and the warning", repointed, warned)
	}
	kv := bootWith(t, k, ko, name, `exercise() {
	f=/proc/sys/net/ipv4/tcp_reordering
	(echo 0 > $f) 2>/dev/null && r=accepted || r=refused
	echo "zero-$1: $r"
	echo 3 > $f
	(echo 100000 > $f) 2>/dev/null && r=accepted || r=refused
	echo "above-$1: $r"
	echo 3 > $f
	unshare -n sh -c "(echo 0 > $f) 2>/dev/null" && r=accepted || r=refused
	echo "netns-zero-$1: $r"
}`, "vmlinux")
	for key, want := range map[string]string{
		"zero-patched": "refused", "above-patched": "refused", "netns-zero-patched": "refused",
		"zero-after": "accepted", "above-after": "accepted", "netns-zero-after": "accepted",
	} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
}
