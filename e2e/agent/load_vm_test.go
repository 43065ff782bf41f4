package agent_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
)

// loadScript drives the agent's own load, transition, rollback window and
// kernel-log watch with the hidden load command: a good cumulative patch
// (v1) runs through its window and is confirmed; a bad one (v2, whose
// patched cmdline_proc_show WARNs) replaces it, and reading /proc/cmdline
// must make the agent disable, unload and mark it bad by itself.
const loadScript = `
A=/usr/bin/tuxtape-agent
S=/var/lib/tuxtape-agent
F="--state-dir $S --transition-wait 20s --signal-wait 20s"
mkdir -p $S
$A status $F >/dev/null 2>&1; echo "status-fresh: $?"
$A load $F --version 1 --rollback-window 3s /root/tt_cmd_v1.ko; echo "load-v1: $?"
echo "cmdline-v1: $(cat /proc/cmdline)"
echo "v1-enabled: $(cat /sys/kernel/livepatch/tt_cmd_v1/enabled)"
$A status $F; echo "status-v1: $?"

# The kill switch: nothing loads.
touch $S/disable
$A load $F --version 5 /root/tt_cmd_v2.ko 2>&1 | tail -1; echo "killswitch-v5: $([ -d /sys/kernel/livepatch/tt_cmd_v2 ] && echo loaded || echo not-loaded)"
rm $S/disable

$A load $F --version 2 --rollback-window 30s /root/tt_cmd_v2.ko & pid=$!
i=0
# The patch's directory shows up (enabled 0) before its init enables it.
while [ "$(cat /sys/kernel/livepatch/tt_cmd_v2/enabled 2>/dev/null)$(cat /sys/kernel/livepatch/tt_cmd_v2/transition 2>/dev/null)" != 10 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
echo "v2-enabled: $(cat /sys/kernel/livepatch/tt_cmd_v2/enabled 2>/dev/null)"
echo "v1-after-v2: $([ -d /sys/kernel/livepatch/tt_cmd_v1 ] && echo there || echo replaced)"
echo "rss-kb: $(grep VmHWM /proc/$pid/status | tr -s ' ' | cut -d' ' -f2)"
t0=$(date +%s)
cat /proc/cmdline > /tmp/bad-cmdline
i=0
while [ -d /sys/kernel/livepatch/tt_cmd_v2 ] || grep -q '^tt_cmd_v2 ' /proc/modules; do
	sleep 0.1; i=$((i+1)); [ $i -lt 300 ] || break
done
t1=$(date +%s)
echo "rollback-seconds: $((t1-t0))"
echo "bad-cmdline: $(cat /tmp/bad-cmdline)"
echo "v2-module: $(grep -c '^tt_cmd_v2 ' /proc/modules)"
wait $pid; echo "load-v2: $?"
echo "state: $(tr -d '\n' < $S/state.json)"
$A status $F; echo "status-after: $?"
$A load $F --version 2 /root/tt_cmd_v2.ko 2>&1 | tail -1
echo "reload-v2: $(grep -c '^tt_cmd_v2 ' /proc/modules)"
`

func TestAgentLoadAndRollbackVM(t *testing.T) {
	k := debianKernel(t)
	agent := buildAgent(t)
	good := buildPatch(t, k, "tt_cmd_v1", "cmdline.patch")
	bad := buildPatch(t, k, "tt_cmd_v2", "cmdline-warn.patch")
	res, err := vmtest.Boot(context.Background(), vmtest.Config{
		Kernel: k.Vmlinuz,
		Files: []vmtest.File{
			{Path: "/usr/bin/tuxtape-agent", Source: agent, Mode: 0o755},
			{Path: "/root/tt_cmd_v1.ko", Source: good},
			{Path: "/root/tt_cmd_v2.ko", Source: bad},
		},
		Script:   loadScript,
		MemoryMB: 512,
		Timeout:  6 * time.Minute,
	})
	if err != nil {
		if res != nil {
			t.Log(cmdout.Tail(res.Console, 80))
		}
		t.Fatal(err)
	}
	t.Logf("guest output:\n%s", res.Output)
	kv := values(res.Output)
	for key, want := range map[string]string{
		"status-fresh":  "1", // never polled
		"load-v1":       "0",
		"v1-enabled":    "1",
		"killswitch-v5": "not-loaded",
		"v2-enabled":    "1",
		"v1-after-v2":   "replaced",
		"v2-module":     "0",
		"load-v2":       "1", // rolled back
		"reload-v2":     "0", // never loaded again
	} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	if !strings.HasPrefix(kv["cmdline-v1"], "tuxtape-livepatched ") {
		t.Errorf("/proc/cmdline under v1 = %q, want the patched text", kv["cmdline-v1"])
	}
	if !strings.HasPrefix(kv["bad-cmdline"], "tuxtape-bad ") {
		t.Errorf("/proc/cmdline under v2 = %q: the bad patch did not run", kv["bad-cmdline"])
	}
	if s, err := strconv.Atoi(kv["rollback-seconds"]); err != nil || s > 10 {
		t.Errorf("rollback took %q s, want at most 10", kv["rollback-seconds"])
	}
	var st struct {
		Kernels map[string]struct {
			Good *struct{ Version int64 }
			Bad  []struct {
				Version int64
				Reason  string
			}
		}
	}
	if err := json.Unmarshal([]byte(kv["state"]), &st); err != nil {
		t.Fatalf("state file %q: %v", kv["state"], err)
	}
	ks := st.Kernels[release]
	if ks.Good == nil || ks.Good.Version != 1 {
		t.Errorf("good version = %+v, want 1", ks.Good)
	}
	if len(ks.Bad) != 1 || ks.Bad[0].Version != 2 || !strings.Contains(ks.Bad[0].Reason, "WARNING") {
		t.Errorf("bad versions = %+v, want version 2 for a WARNING", ks.Bad)
	}
	if !strings.Contains(res.Dmesg, "'tt_cmd_v2': unpatching complete") {
		t.Errorf("dmesg lacks the unpatching of tt_cmd_v2:\n%s", cmdout.Tail(res.Dmesg, 40))
	}
	t.Logf("agent peak RSS while loading: %s kB", kv["rss-kb"])
}
