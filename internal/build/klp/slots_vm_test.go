package klp_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

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
	tool := filepath.Join(t.TempDir(), "qdisc")
	build := exec.Command("go", "build", "-o", tool, "./testdata/qdisc")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the qdisc tool: %v\n%s", err, out)
	}
	r, err := vmcheck.Check(context.Background(), k.VM(), ko, name, []string{"sch_codel", "sch_tbf"}, `exercise() {
	tr=/sys/kernel/tracing
	if [ "$1" = patched ]; then
		echo ":mod:`+name+`" > $tr/set_ftrace_filter
		echo function > $tr/current_tracer
	fi
	echo > $tr/trace
	ip link set lo up
	/root/qdisc add lo && echo "qdisc-$1: ok"
	ping -c 3 -i 0.2 127.0.0.1 >/dev/null && echo "ping-$1: ok"
	/root/qdisc del lo || true
	echo "peek-$1: $(grep -c ' codel_peek <-tbf_dequeue' $tr/trace || true)"
	echo nop > $tr/current_tracer
}`, vmtest.File{Path: "/root/qdisc", Source: tool, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM values: %v", r.Values)
	if !r.OK() {
		t.Fatalf("VM report: %s\n%s", r.Summary(), cmdout.Tail(r.Dmesg, 30))
	}
	kv := r.Values
	if !strings.Contains(kv["later"], "sch_codel") || kv["objects"] != "sch_codel=1" {
		t.Errorf("later %q, objects %q: want sch_codel loaded after the patch and patched", kv["later"], kv["objects"])
	}
	for _, phase := range []string{"patched", "after"} {
		if kv["qdisc-"+phase] != "ok" || kv["ping-"+phase] != "ok" {
			t.Errorf("%s: qdisc %q, ping %q; want ok, ok", phase, kv["qdisc-"+phase], kv["ping-"+phase])
		}
	}
	if kv["peek-patched"] == "" || kv["peek-patched"] == "0" {
		t.Errorf("tbf never called the patch's codel_peek (peek-patched = %q)", kv["peek-patched"])
	}
}
