// Command cumulative builds one cumulative (replace = true) livepatch of
// every fix a corpus run loaded alone, and a second version with one more
// fix, and runs them in a VM of the target kernel as hosts see them: the
// first loads before any module it targets, the modules load and get
// patched, the second replaces the first (the cumulative transition), is
// removed, and loads again with the modules already there. It prints the
// build times and sizes, and what the VM showed; exit status 1 if anything
// went wrong.
//
//	go run ./bench/cumulative -report corpus-report.json [-kernel RELEASE=VERSION]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/service"
)

func main() {
	kernel := flag.String("kernel", "6.1.0-50-cloud-amd64=6.1.176-1", "Debian kernel RELEASE=VERSION")
	corpus := flag.String("corpus", "../shared/corpus/debian-6.1.176", "corpus directory")
	report := flag.String("report", "corpus-report.json", "a `patch corpus --vm --report` file: its fixes that loaded are built together")
	out := flag.String("out", "", "keep the two modules in this directory")
	flag.Parse()
	if err := run(*kernel, *corpus, *report, *out); err != nil {
		fmt.Fprintln(os.Stderr, "cumulative:", err)
		os.Exit(1)
	}
}

func loadedIDs(report string) ([]string, error) {
	data, err := os.ReadFile(report)
	if err != nil {
		return nil, err
	}
	var entries []service.CorpusEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		var wrapped struct {
			Entries []service.CorpusEntry `json:"entries"`
		}
		if err2 := json.Unmarshal(data, &wrapped); err2 != nil {
			return nil, fmt.Errorf("%s: %w", report, err)
		}
		entries = wrapped.Entries
	}
	var ids []string
	for _, e := range entries {
		if e.Class == service.ClassLoaded || e.Class == service.ClassLoadedAbsent {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	if len(ids) < 2 {
		return nil, fmt.Errorf("%s: %d fixes loaded, want at least 2", report, len(ids))
	}
	return ids, nil
}

func run(kernel, corpus, report, keep string) error {
	ids, err := loadedIDs(report)
	if err != nil {
		return err
	}
	release, version, ok := strings.Cut(kernel, "=")
	if !ok {
		return fmt.Errorf("-kernel %q: want RELEASE=VERSION", kernel)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return err
	}
	ctx := context.Background()
	k, err := target.Debian(ctx, debpkg.Options{}, release, version, filepath.Join(cache, "tuxtape", "trees"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "cumulative-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dir := keep
	if dir == "" {
		dir = work
	}
	var fixes []klp.Fix
	for _, id := range ids {
		d, err := os.ReadFile(filepath.Join(corpus, "patches", id+".patch"))
		if err != nil {
			return err
		}
		fixes = append(fixes, klp.Fix{Name: id, Diff: d})
	}
	build := func(name string, fixes []klp.Fix) (string, *klp.Result, error) {
		ko := filepath.Join(dir, name+".ko")
		start := time.Now()
		res, err := klp.Build(ctx, k.Kernel, klp.Options{Fixes: fixes, Name: name, Replace: true, WorkDir: filepath.Join(work, "w-"+name), Out: ko})
		if err != nil {
			return "", nil, fmt.Errorf("build %s of %d fixes: %w", name, len(fixes), err)
		}
		fi, err := os.Stat(ko)
		if err != nil {
			return "", nil, err
		}
		objs := objects(res)
		fmt.Printf("%s: %d fixes, %d units, %d objects (vmlinux and %d modules): built in %.1f s (before %.1f, after %.1f, compare %.1f, module %.1f, final %.2f), %d KiB\n",
			name, len(fixes), len(res.Units), len(objs), len(objs)-1, time.Since(start).Seconds(),
			res.Timing.Before.Seconds(), res.Timing.After.Seconds(), res.Timing.Compare.Seconds(), res.Timing.Module.Seconds(), res.Timing.Final.Seconds(), fi.Size()/1024)
		return ko, res, nil
	}
	// The second version adds the last fix to the first.
	v1, _, err := build("tt_cumulative_1", fixes[:len(fixes)-1])
	if err != nil {
		return err
	}
	v2, res2, err := build("tt_cumulative_2", fixes)
	if err != nil {
		return err
	}
	fmt.Printf("v2 adds %s\n", ids[len(ids)-1])
	var mods []string
	for _, o := range objects(res2) {
		if o != "vmlinux" {
			mods = append(mods, o)
		}
	}
	res, err := vmtest.Boot(ctx, vmtest.Config{
		Kernel: k.Vmlinuz, ModulesDir: k.ModulesDir, Available: mods,
		Files:    []vmtest.File{{Path: "/root/tt_cumulative_1.ko", Source: v1}, {Path: "/root/tt_cumulative_2.ko", Source: v2}},
		Script:   script(mods),
		MemoryMB: 1024, Timeout: 6 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("VM: %w", err)
	}
	kv := vmcheck.Values(res.Output)
	for _, key := range []string{"v1", "loaded", "failed", "v1-objects", "v2", "v1-after-replace", "v2-objects", "removed", "again", "again-objects", "removed-again", "modules"} {
		fmt.Printf("  %-17s %s\n", key+":", kv[key])
	}
	var bad []string
	failed := strings.Fields(kv["failed"])
	for _, phase := range []string{"v1-objects", "v2-objects", "again-objects"} {
		for _, o := range strings.Fields(kv[phase]) {
			name, patched, _ := strings.Cut(o, "=")
			if patched != "1" && !slices.Contains(failed, name) {
				bad = append(bad, phase+": "+name+" not patched")
			}
		}
	}
	for _, c := range []struct{ key, want string }{
		{"v1", "1 0"}, {"v2", "1 0"}, {"v1-after-replace", "gone"}, {"removed", "gone"},
		{"again", "1 0"}, {"removed-again", "gone"}, {"modules", "0"},
	} {
		if kv[c.key] != c.want {
			bad = append(bad, fmt.Sprintf("%s: %q, want %q", c.key, kv[c.key], c.want))
		}
	}
	for _, p := range res.Problems {
		bad = append(bad, "kernel: "+p.Line)
	}
	if res.ExitCode != 0 {
		bad = append(bad, fmt.Sprintf("the script failed (exit %d)", res.ExitCode))
	}
	fmt.Printf("VM: %.1f s; %d of %d target modules loaded after the patch (%s failed to load in the VM at all)\n", res.Duration.Seconds(), len(strings.Fields(kv["loaded"])), len(mods), kv["failed"])
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("in the VM:\n  %s", strings.Join(bad, "\n  "))
	}
	fmt.Println("VM: both versions loaded before their modules, patched each as it loaded, the second replaced the first, and loaded again after them: clean")
	return nil
}

func objects(res *klp.Result) []string {
	var out []string
	for _, u := range res.Units {
		if !slices.Contains(out, u.Object) {
			out = append(out, u.Object)
		}
	}
	slices.Sort(out)
	return out
}

// script loads version 1 before the modules, the modules, version 2 over
// it, removes it, and loads it again with the modules there.
func script(mods []string) string {
	return fmt.Sprintf(`set -e
lp=/sys/kernel/livepatch
wait_transition() {
	i=0
	while [ -e $lp/$1/transition ] && [ "$(cat $lp/$1/transition)" != 0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
}
objects() {
	for o in $lp/$1/*/; do [ -e "$o/patched" ] && printf '%%s=%%s ' "$(basename $o)" "$(cat $o/patched)"; done | sed 's/ $//'
}
gone() {
	i=0
	while [ -e $lp/$1 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
	[ -e $lp/$1 ] && echo present || echo gone
}
insmod /root/tt_cumulative_1.ko
wait_transition tt_cumulative_1
echo "v1: $(cat $lp/tt_cumulative_1/enabled) $(cat $lp/tt_cumulative_1/transition)"
ok= bad=
for m in %s; do if modprobe $m 2>/dev/null; then ok="$ok $m"; else bad="$bad $m"; fi; done
echo "loaded:$ok"
echo "failed:$bad"
echo "v1-objects: $(objects tt_cumulative_1)"
insmod /root/tt_cumulative_2.ko
wait_transition tt_cumulative_2
echo "v2: $(cat $lp/tt_cumulative_2/enabled) $(cat $lp/tt_cumulative_2/transition)"
echo "v1-after-replace: $(gone tt_cumulative_1)"
rmmod tt_cumulative_1
echo "v2-objects: $(objects tt_cumulative_2)"
echo 0 > $lp/tt_cumulative_2/enabled
echo "removed: $(gone tt_cumulative_2)"
rmmod tt_cumulative_2
insmod /root/tt_cumulative_2.ko
wait_transition tt_cumulative_2
echo "again: $(cat $lp/tt_cumulative_2/enabled) $(cat $lp/tt_cumulative_2/transition)"
echo "again-objects: $(objects tt_cumulative_2)"
echo 0 > $lp/tt_cumulative_2/enabled
echo "removed-again: $(gone tt_cumulative_2)"
rmmod tt_cumulative_2
echo "modules: $(grep -c '^tt_cumulative' /proc/modules || true)"
`, strings.Join(mods, " "))
}
