package vmcheck

import (
	"reflect"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

func TestTransitionBlockers(t *testing.T) {
	// Lines as kernel/livepatch/transition.c prints them with dynamic
	// debug on, from the CVE-2026-64435 run (kauditd never leaves
	// kauditd_thread).
	dmesg := "[   12.1] livepatch: 'tt_x': starting patching transition\n" +
		"[   12.2] livepatch: klp_try_switch_task: kauditd:22 is sleeping on function kauditd_thread\n" +
		"[   13.2] livepatch: klp_try_switch_task: kauditd:22 is sleeping on function kauditd_thread\n" +
		"[   13.3] livepatch: klp_try_switch_task: sh:1 is running\n" +
		"[   14.2] livepatch: klp_try_switch_task: kworker/0:1:17 is sleeping on function worker_thread\n"
	got := kmsg.Blockers(dmesg)
	want := []string{"kauditd:22 in kauditd_thread", "kworker/0:1:17 in worker_thread"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kmsg.Blockers = %q, want %q", got, want)
	}
	if got := kmsg.Blockers("garbage\x00 is sleeping on function\n"); got != nil {
		t.Errorf("kmsg.Blockers(garbage) = %q, want none", got)
	}
}

func TestReportSummary(t *testing.T) {
	tests := []struct {
		name string
		r    Report
		want string
	}{
		{"clean", Report{Enabled: true, Transition: true, Unloaded: true}, ""},
		{"stuck", Report{Enabled: true, Unloaded: true, Blockers: []string{"kauditd:22 in kauditd_thread"}},
			"the transition did not complete in 30 s (tasks sleeping in patched functions: kauditd:22 in kauditd_thread; a kernel thread that never leaves a patched function keeps the old code)"},
		{"oops", Report{Enabled: true, Transition: true, Unloaded: true, Problems: []string{"BUG: kernel NULL pointer dereference"}},
			"BUG: kernel NULL pointer dereference"},
		{"not loaded", Report{}, "the patch did not enable; the patch did not disable and unload cleanly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Summary(); got != tt.want {
				t.Errorf("Summary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	got := Values("enabled: 1\nlater:\nobjects: udf=1 vmlinux=1\nnot a value line\ntwo words: no\n: empty key\nenabled: 0\n")
	want := map[string]string{"enabled": "0", "later": "", "objects": "udf=1 vmlinux=1"}
	if len(got) != len(want) {
		t.Fatalf("Values = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Values[%q] = %q, want %q", k, got[k], v)
		}
	}
}
