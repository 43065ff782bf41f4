package agent_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
)

// pipeScript holds a transition up with a task asleep in pipe_read (cat
// reading a pipe nobody writes to), which both patches replace.
//
// v1 (T1 2 s, T2 30 s): the transition stalls past T1. 6.1 has no signal
// attribute to write (5.x had one); the kernel fake-signals the remaining
// tasks itself after 15 s, cat leaves pipe_read for its signal check and
// switches, and the transition completes inside T2.
//
// v2 (T1 1 s, T2 1 s): the agent gives up before the kernel's signal: it
// disables v2 (a reverse transition, back to v1), waits, unloads it and
// marks it bad; v1 stays enabled.
const pipeScript = `
A=/usr/bin/tuxtape-agent
S=/var/lib/tuxtape-agent
mkdir -p $S
# Neither may hold the script's output pipe, or the guest waits for them.
sleep 100000 </dev/null 2>/dev/null | cat >/dev/null 2>&1 &
sleep 1
t0=$(date +%s)
$A load --state-dir $S --version 1 --rollback-window 1s --transition-wait 2s --signal-wait 30s /root/tt_pipe_v1.ko; echo "load-v1: $?"
t1=$(date +%s)
echo "v1-seconds: $((t1-t0))"
echo "v1-enabled: $(cat /sys/kernel/livepatch/tt_pipe_v1/enabled)$(cat /sys/kernel/livepatch/tt_pipe_v1/transition)"
echo "signals-v1: $(dmesg | grep -c 'signaling remaining tasks')"
$A load --state-dir $S --version 2 --transition-wait 1s --signal-wait 1s /root/tt_pipe_v2.ko 2>&1 | tail -1
echo "v2-registered: $([ -d /sys/kernel/livepatch/tt_pipe_v2 ] && echo yes || echo no)"
echo "v2-module: $(grep -c '^tt_pipe_v2 ' /proc/modules)"
echo "v1-after: $(cat /sys/kernel/livepatch/tt_pipe_v1/enabled)$(cat /sys/kernel/livepatch/tt_pipe_v1/transition)"
echo "bad-v2: $(grep -c '"version": 2' $S/state.json)"
echo "pipe-ok: $(echo hi | cat)"
`

func TestAgentTransitionPolicyVM(t *testing.T) {
	k := debianKernel(t)
	agent := buildAgent(t)
	v1 := buildPatch(t, k, "tt_pipe_v1", "pipe-v1.patch")
	v2 := buildPatch(t, k, "tt_pipe_v2", "pipe-v2.patch")
	res, err := vmtest.Boot(context.Background(), vmtest.Config{
		Kernel: k.Vmlinuz,
		Files: []vmtest.File{
			{Path: "/usr/bin/tuxtape-agent", Source: agent, Mode: 0o755},
			{Path: "/root/tt_pipe_v1.ko", Source: v1},
			{Path: "/root/tt_pipe_v2.ko", Source: v2},
		},
		Script:  pipeScript,
		Timeout: 5 * time.Minute,
	})
	if err != nil {
		if res != nil {
			t.Log(cmdout.Tail(res.Console, 60))
		}
		t.Fatal(err)
	}
	t.Logf("guest output:\n%s", res.Output)
	kv := values(res.Output)
	for key, want := range map[string]string{
		"load-v1": "0", "v1-enabled": "10",
		"v2-registered": "no", "v2-module": "0", "v1-after": "10", "bad-v2": "1", "pipe-ok": "hi",
	} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	if s, err := strconv.Atoi(kv["v1-seconds"]); err != nil || s < 2 || s > 30 {
		t.Errorf("v1's transition took %q s: want it stalled past T1 (2 s) and done within T2 (30 s)", kv["v1-seconds"])
	}
	if !strings.Contains(res.Output, "livepatch transition stalled") {
		t.Errorf("agent output lacks the stall of v1")
	}
	if n, _ := strconv.Atoi(kv["signals-v1"]); n < 1 {
		t.Errorf("the kernel logged no 'signaling remaining tasks' for v1")
	}
	if !strings.Contains(res.Output, "transition did not complete") {
		t.Errorf("agent output lacks the stuck transition of v2")
	}
	for _, want := range []string{"'tt_pipe_v1': patching complete", "'tt_pipe_v2': starting patching transition", "'tt_pipe_v2': unpatching complete"} {
		if !strings.Contains(res.Dmesg, want) {
			t.Errorf("dmesg lacks %q:\n%s", want, cmdout.Tail(res.Dmesg, 30))
		}
	}
}
