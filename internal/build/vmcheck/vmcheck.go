// Package vmcheck runs a livepatch module through its life in a VM of
// its target kernel (load, transition, exercise, disable, unload) and
// reports what the kernel log showed.
package vmcheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

// Report is what loading a livepatch in a VM showed.
type Report struct {
	Enabled    bool     `json:"enabled"`
	Transition bool     `json:"transitioned"`
	Unloaded   bool     `json:"unloaded"`
	Functions  []string `json:"functions"` // sysfs <object>/<function>,<sympos>
	Problems   []string `json:"problems,omitempty"`
	// Blockers are the tasks the kernel found sleeping in a patched
	// function while the transition waited ("comm:pid in function").
	Blockers []string `json:"blockers,omitempty"`
	// Absent are target modules that cannot load in the VM (no such
	// hardware or hypervisor): the patch loads without them, and their
	// functions are registered but not patched.
	Absent []string `json:"absent,omitempty"`
	// Later are the target modules that loaded after the patch (and got
	// patched as they loaded, unless Problems says otherwise).
	Later    []string          `json:"later,omitempty"`
	Values   map[string]string `json:"values,omitempty"` // "key: value" lines the exercise printed
	Dmesg    string            `json:"-"`
	Duration time.Duration     `json:"duration_ns"`
}

// OK reports whether the patch loaded, transitioned and unloaded cleanly.
func (r *Report) OK() bool {
	return r.Enabled && r.Transition && r.Unloaded && len(r.Problems) == 0
}

// Summary says in one line what went wrong, or "" if nothing did.
func (r *Report) Summary() string {
	var parts []string
	if !r.Enabled {
		parts = append(parts, "the patch did not enable")
	}
	if r.Enabled && !r.Transition {
		p := "the transition did not complete in 30 s"
		if len(r.Blockers) > 0 {
			p += " (tasks sleeping in patched functions: " + strings.Join(r.Blockers, ", ") + "; a kernel thread that never leaves a patched function keeps the old code)"
		}
		parts = append(parts, p)
	}
	if !r.Unloaded {
		parts = append(parts, "the patch did not disable and unload cleanly")
	}
	parts = append(parts, r.Problems...)
	return strings.Join(parts, "; ")
}

// LifecycleScript runs /root/<name>.ko through its life as a host sees
// it: the patch loads first, then the target modules (later, listed by
// name) load and must get patched as they come; exercise (a shell
// function, given "patched" and then "after") runs while the patch is
// enabled and once it is gone; the patch is disabled and unloaded; then it
// is loaded once more with the modules already there, and removed again.
// It prints key: value lines.
func LifecycleScript(name, exercise string, later []string) string {
	if exercise == "" {
		exercise = "exercise() { :; }"
	}
	return fmt.Sprintf(`set -e
lp=/sys/kernel/livepatch/%[1]s
wait_transition() {
	i=0
	while [ -e $lp/transition ] && [ "$(cat $lp/transition)" != 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
}
# Objects of the patch and whether each is patched: "vmlinux=1 ext4=0".
objects() {
	for o in $lp/*/; do [ -e "$o/patched" ] && printf '%%s=%%s ' "$(basename $o)" "$(cat $o/patched)"; done | sed 's/ $//'
}
remove_patch() {
	echo 0 > $lp/enabled
	i=0
	while [ -e $lp ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	[ -e $lp ] && echo "$1: still there" || echo "$1: gone"
	rmmod %[1]s
}
%[2]s
# Let the kernel say which tasks hold up the transition.
[ -d /sys/kernel/debug/dynamic_debug ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
echo 'file kernel/livepatch/transition.c +p' > /sys/kernel/debug/dynamic_debug/control 2>/dev/null || true
insmod /root/%[1]s.ko
wait_transition
echo "enabled: $(cat $lp/enabled)"
echo "transition: $(cat $lp/transition)"
loaded= failed=
for m in %[3]s; do
	if modprobe $m 2>/dev/null; then loaded="$loaded $m"; else failed="$failed $m"; fi
done
echo "later:$loaded"
wait_transition
echo "objects: $(objects)"
echo "sysfs: $(cd $lp && ls -d */*,* | tr '
' ' ' | sed 's/ $//')"
exercise patched
remove_patch disabled
echo "modules: $(grep -c '^%[1]s ' /proc/modules || true)"
# A module that would not load under the patch but loads without it was
# refused because of the patch; one that does not load either way has no
# device or hypervisor here.
blocked= absent=
for m in $failed; do
	if modprobe $m 2>/dev/null; then blocked="$blocked $m"; else absent="$absent $m"; fi
done
echo "blocked:$blocked"
echo "absent:$absent"
insmod /root/%[1]s.ko
wait_transition
echo "again: $(cat $lp/enabled) $(cat $lp/transition)"
echo "objects-again: $(objects)"
remove_patch disabled-again
echo "modules-again: $(grep -c '^%[1]s ' /proc/modules || true)"
exercise after
`, name, exercise, strings.Join(later, " "))
}

// DefaultExercise is what a vetting run does while the patch is enabled
// when nobody configured better: it reads the common /proc and /sys files
// and does some file I/O, which runs a good share of the kernel's common
// paths. What a fix needs to run (a filesystem image, a device) takes an
// exercise of its own; the report says which patched functions ran.
const DefaultExercise = `default_exercise() {
	cat /proc/cmdline /proc/consoles /proc/version /proc/meminfo /proc/stat /proc/modules >/dev/null 2>&1 || true
	for f in /proc/self/status /proc/self/maps /proc/self/mountinfo; do cat $f >/dev/null 2>&1 || true; done
	ls -R /proc/sys /sys/kernel >/dev/null 2>&1 || true
	echo tuxtape > /tmp/tt-exercise && cat /tmp/tt-exercise >/dev/null && rm -f /tmp/tt-exercise
	sync
}`

// Scripts is an exercise (a shell function named ScriptsFunc) that runs
// each script in turn as `sh -s PHASE` (patched, then after), or the
// default exercise when there is none. A script's failure is reported on
// the console and does not stop the check: the kernel log decides.
func Scripts(scripts []string) (inner, body string) {
	if len(scripts) == 0 {
		return "default_exercise", DefaultExercise
	}
	var b strings.Builder
	b.WriteString(ScriptsFunc + "() {\n")
	for i, s := range scripts {
		// A quoted here-document passes the script through unexpanded; its
		// delimiter must not be a line of the script.
		delim := fmt.Sprintf("TUXTAPE_EXERCISE_%d", i)
		for strings.Contains("\n"+s+"\n", "\n"+delim+"\n") {
			delim += "_"
		}
		fmt.Fprintf(&b, "\tsh -s \"$1\" <<'%s' || echo \"exercise %d ($1) exited $?\"\n%s\n%s\n", delim, i+1, strings.TrimRight(s, "\n"), delim)
	}
	b.WriteString("}")
	return ScriptsFunc, b.String()
}

// ScriptsFunc is the shell function Scripts defines.
const ScriptsFunc = "configured_exercise"

// Traced wraps an exercise (a shell function named inner, defined in
// body) so that, while the patch is enabled, function tracing limited to
// the livepatch module records which of its functions ran: the report's
// Values["ran"] lists them (space-separated symbols).
func Traced(module, inner, body string) string {
	return body + fmt.Sprintf(`
exercise() {
	tr=/sys/kernel/tracing
	if [ "$1" = patched ]; then
		[ -e $tr/trace ] || mount -t tracefs nodev $tr 2>/dev/null || true
		echo ":mod:%[1]s" > $tr/set_ftrace_filter 2>/dev/null || true
		echo function > $tr/current_tracer 2>/dev/null || true
		echo > $tr/trace 2>/dev/null || true
	fi
	%[2]s "$1"
	if [ "$1" = patched ]; then
		echo "ran: $(grep -v '^#' $tr/trace 2>/dev/null | sed -n 's/.*: \([^ ]*\) <-.*/\1/p' | sort -u | tr '\n' ' ')"
		echo nop > $tr/current_tracer 2>/dev/null || true
		echo > $tr/set_ftrace_filter 2>/dev/null || true
	fi
}`, module, inner)
}

// Target is the kernel a check boots.
type Target struct {
	Vmlinuz    string // the bootable image
	ModulesDir string // its /lib/modules/RELEASE
}

// Check boots the target kernel in QEMU with the modules the patch
// targets loaded, and runs the patch through its life. files are extra
// files for the guest (what the exercise reads).
func Check(ctx context.Context, k Target, ko, name string, objects []string, exercise string, files ...vmtest.File) (*Report, error) {
	var mods []string
	for _, o := range objects {
		if o != "vmlinux" {
			mods = append(mods, o)
		}
	}
	cfg := vmtest.Config{
		Kernel:     k.Vmlinuz,
		ModulesDir: k.ModulesDir,
		Available:  mods,
		Files:      append([]vmtest.File{{Path: "/root/" + name + ".ko", Source: ko}}, files...),
		Script:     LifecycleScript(name, exercise, mods),
		Timeout:    3 * time.Minute,
	}
	res, err := vmtest.Boot(ctx, cfg)
	if err != nil {
		tail := ""
		if res != nil {
			tail = cmdout.Tail(res.Console, 40)
		}
		return nil, fmt.Errorf("boot the VM: %w\n%s", err, tail)
	}
	r := &Report{Dmesg: res.Dmesg, Duration: res.Duration}
	r.Blockers = kmsg.Blockers(res.Dmesg)
	r.Values = Values(res.Output)
	r.Enabled = r.Values["enabled"] == "1"
	r.Transition = r.Values["transition"] == "0" && strings.Contains(res.Dmesg, "'"+name+"': patching complete")
	r.Unloaded = r.Values["disabled"] == "gone" && r.Values["modules"] == "0" && strings.Contains(res.Dmesg, "'"+name+"': unpatching complete")
	r.Functions = strings.Fields(r.Values["sysfs"])
	r.Later = strings.Fields(r.Values["later"])
	r.Absent = strings.Fields(r.Values["absent"])
	r.Problems = append(r.Problems, objectProblems(r)...)
	for _, p := range res.Problems {
		r.Problems = append(r.Problems, p.Line)
	}
	if res.ExitCode != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the test script failed (exit %d): %s", res.ExitCode, cmdout.Tail(res.Console, 15)))
	}
	return r, nil
}

// Values are the "key: value" lines a guest script printed (a key is one
// word; the last line with a key wins).
func Values(output string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(output, "\n") {
		if key, v, ok := strings.Cut(line, ":"); ok && key != "" && !strings.ContainsAny(key, " \t") {
			kv[key] = strings.TrimSpace(v)
		}
	}
	return kv
}

// objectProblems checks what sysfs said of each patch object: patched
// when its module loaded after the patch, and again when the patch loaded
// with the modules there; a module the patch kept from loading.
func objectProblems(r *Report) []string {
	if !r.Enabled {
		return nil // said already
	}
	var out []string
	if b := r.Values["blocked"]; b != "" {
		out = append(out, fmt.Sprintf("%s would not load while the patch was enabled, and loaded without it (see the kernel log: the livepatch core refused to patch it)", b))
	}
	absent := map[string]bool{}
	for _, m := range r.Absent {
		absent[strings.ReplaceAll(m, "-", "_")] = true
	}
	for _, phase := range []struct{ key, when string }{
		{"objects", "after its module loaded later"},
		{"objects-again", "when the patch loaded again with its module already there"},
	} {
		for _, kv := range strings.Fields(r.Values[phase.key]) {
			obj, patched, _ := strings.Cut(kv, "=")
			if patched != "1" && !absent[obj] {
				out = append(out, fmt.Sprintf("object %s was not patched %s", obj, phase.when))
			}
		}
	}
	again := strings.Fields(r.Values["again"])
	if len(again) != 2 || again[0] != "1" || again[1] != "0" || r.Values["disabled-again"] != "gone" || r.Values["modules-again"] != "0" {
		out = append(out, fmt.Sprintf("loaded again with its modules already there, the patch did not enable, transition and unload cleanly (enabled, transition: %q; removed: %q)", r.Values["again"], r.Values["disabled-again"]))
	}
	return out
}
