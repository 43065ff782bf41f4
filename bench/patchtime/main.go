// Command patchtime measures where a livepatch build's time goes, the way
// the generator builds today (the unfixed and fixed compiles side by side,
// the fixed one in an overlay of the tree) and the way it did until
// 2026-12-02 (one after the other — klp.Options.Sequential — in a copy of
// the tree made of hard links — TUXTAPE_WORKSPACE_OVERLAY=0), alternating
// on the same fixes in one run, and prints the medians per phase and the
// ratio. Since the builder sandbox the unfixed compile runs in a workspace
// too, so the old mode now makes two copies and is slower than the build
// of before 2026-12-02 was.
//
//	go run ./bench/patchtime -count 3 [-kernel RELEASE=VERSION] [FIX.patch…]
//
// Without fixes it takes the corpus fixes listed in -ids. Each fix is built
// once first, unmeasured, so that both modes see a prepared tree whose
// unfixed objects are already there (as on a builder that has built other
// patches), and the kernel's packages and tree are cached.
package main

import (
	"context"
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
)

// The default fixes: corpus fixes that give a module (vmlinux and modules,
// one and several units).
const defaultIDs = "CVE-2026-31451,CVE-2026-64317,CVE-2026-64324,CVE-2026-64373,CVE-2026-64425,CVE-2026-64298,CVE-2026-63806"

func main() {
	kernel := flag.String("kernel", "6.1.0-50-cloud-amd64=6.1.176-1", "Debian kernel RELEASE=VERSION")
	corpus := flag.String("corpus", "../shared/corpus/debian-6.1.176", "corpus directory (with -ids)")
	ids := flag.String("ids", defaultIDs, "corpus fix IDs to build when no files are given")
	count := flag.Int("count", 3, "measured builds of each fix in each mode")
	flag.Parse()
	fixes := flag.Args()
	if len(fixes) == 0 {
		for _, id := range strings.Split(*ids, ",") {
			fixes = append(fixes, filepath.Join(*corpus, "patches", id+".patch"))
		}
	}
	if err := run(*kernel, fixes, *count); err != nil {
		fmt.Fprintln(os.Stderr, "patchtime:", err)
		os.Exit(1)
	}
}

type sample struct {
	total time.Duration
	t     klp.Timing
}

func run(kernel string, fixes []string, count int) error {
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
	work, err := os.MkdirTemp("", "patchtime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	build := func(fix string, sequential bool) (sample, error) {
		d, err := os.ReadFile(fix)
		if err != nil {
			return sample{}, err
		}
		if sequential {
			os.Setenv("TUXTAPE_WORKSPACE_OVERLAY", "0")
		} else {
			os.Unsetenv("TUXTAPE_WORKSPACE_OVERLAY")
		}
		start := time.Now()
		res, err := klp.Build(ctx, k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: filepath.Base(fix), Diff: d}}, Name: "tt_patchtime", Replace: true,
			Sequential: sequential, WorkDir: filepath.Join(work, "w"), Out: filepath.Join(work, "x.ko")})
		os.RemoveAll(filepath.Join(work, "w"))
		if err != nil {
			return sample{}, fmt.Errorf("%s: %w", filepath.Base(fix), err)
		}
		return sample{time.Since(start), res.Timing}, nil
	}
	modes := map[bool][]sample{}
	for _, fix := range fixes {
		if _, err := build(fix, true); err != nil { // warm: packages, tree, unfixed objects
			return err
		}
		for i := range count {
			for _, seq := range []bool{i%2 == 0, i%2 != 0} { // alternate which goes first
				s, err := build(fix, seq)
				if err != nil {
					return err
				}
				modes[seq] = append(modes[seq], s)
				fmt.Printf("%-22s %-10s %5.1f s  (before %.1f, after %.1f, compare %.2f, module %.1f, final %.2f)\n",
					filepath.Base(fix), name(seq), s.total.Seconds(), s.t.Before.Seconds(), s.t.After.Seconds(), s.t.Compare.Seconds(), s.t.Module.Seconds(), s.t.Final.Seconds())
			}
		}
	}
	fmt.Printf("\n%d fixes × %d builds per mode; medians in seconds\n", len(fixes), count)
	fmt.Printf("%-11s %6s %7s %6s %8s %7s %6s\n", "MODE", "TOTAL", "BEFORE", "AFTER", "COMPARE", "MODULE", "FINAL")
	for _, seq := range []bool{true, false} {
		s := modes[seq]
		m := func(f func(sample) time.Duration) float64 { return median(s, f).Seconds() }
		fmt.Printf("%-11s %6.1f %7.1f %6.1f %8.2f %7.1f %6.2f\n", name(seq), m(func(s sample) time.Duration { return s.total }),
			m(func(s sample) time.Duration { return s.t.Before }), m(func(s sample) time.Duration { return s.t.After }),
			m(func(s sample) time.Duration { return s.t.Compare }), m(func(s sample) time.Duration { return s.t.Module }), m(func(s sample) time.Duration { return s.t.Final }))
	}
	seq, par := median(modes[true], total), median(modes[false], total)
	fmt.Printf("today's build is %.2fx as fast as the old one (median %.1f s vs %.1f s)\n", seq.Seconds()/par.Seconds(), par.Seconds(), seq.Seconds())
	return nil
}

func total(s sample) time.Duration { return s.total }

func name(sequential bool) string {
	if sequential {
		return "old"
	}
	return "today"
}

func median(s []sample, f func(sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(s))
	for i := range s {
		v[i] = f(s[i])
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2] // the upper median for an even count
}
