// Command includes compares the static include graph (kbuild.Static with
// Headers) of a kernel tree and config with a real build's profile: for
// each header, the units that read it in the real build, those the static
// graph gives, true positives, precision and recall, and the totals. It
// also measures what the graph costs: the time of the static evaluation
// with and without it, the heap it holds, and the size of the profile's
// JSON (plain and gzipped, as the store keeps it).
//
//	go run ./bench/includes -tree TREE -config TREE/.config -real real.json
//	go run ./bench/includes -tree BUILD -config BUILD/.config -real-build BUILD
//
// The headers are those the corpus's fixes change (-patches), or the lines
// of -headers, or with -all every header in the real profile's Deps.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/kbuild"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

func main() {
	tree := flag.String("tree", "", "kernel source tree (prepared: generated headers present)")
	config := flag.String("config", "", "its .config (default: TREE/.config)")
	realJSON := flag.String("real", "", "real profile JSON (tuxtape kernel profile NAME --real --json)")
	realBuild := flag.String("real-build", "", "or: a finished in-tree build to read the real profile from")
	patches := flag.String("patches", "../shared/corpus/debian-6.1.176/patches", "directory of fixes whose changed .h files are compared")
	headers := flag.String("headers", "", "file listing the headers to compare, one a line (instead of -patches)")
	all := flag.Bool("all", false, "also compare every header in the real profile's Deps (totals only)")
	cOnly := flag.Bool("c", false, "count C units only (what the livepatch generator compiles)")
	quiet := flag.Bool("q", false, "print the totals only")
	explain := flag.String("explain", "", "list the units of this header that only one side has")
	flag.Parse()
	if *tree == "" || (*realJSON == "") == (*realBuild == "") {
		fmt.Fprintln(os.Stderr, "usage: includes -tree DIR [-config FILE] (-real FILE | -real-build DIR) [-patches DIR | -headers FILE] [-all] [-c]")
		os.Exit(2)
	}
	if *config == "" {
		*config = filepath.Join(*tree, ".config")
	}
	ctx := context.Background()
	cfg, err := kconfig.ReadConfig(*config)
	if err != nil {
		log.Fatal(err)
	}

	var real *profile.Profile
	if *realBuild != "" {
		real, err = kbuild.ReadBuild(ctx, *realBuild)
	} else {
		real, err = readProfile(*realJSON)
	}
	if err != nil {
		log.Fatal(err)
	}

	// Without headers first, then with; each after a collection so the
	// heap figures are the profile's own.
	plain, tPlain := static(ctx, *tree, cfg, false)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	st, tHeaders := static(ctx, *tree, cfg, true)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	plainJSON, plainGz := sizes(plain)
	stJSON, stGz := sizes(st)
	realJSONSize, realGz := sizes(real)
	entries := func(p *profile.Profile) (n int) {
		for _, us := range p.Deps {
			n += len(us)
		}
		return n
	}
	fmt.Printf("static without headers: %v, %d units, %d deps (%d entries), JSON %s (gzip %s)\n",
		tPlain.Round(time.Millisecond), len(plain.Units), len(plain.Deps), entries(plain), mb(plainJSON), mb(plainGz))
	fmt.Printf("static with headers:    %v, %d units, %d deps (%d entries), JSON %s (gzip %s), heap +%s\n",
		tHeaders.Round(time.Millisecond), len(st.Units), len(st.Deps), entries(st), mb(stJSON), mb(stGz),
		mb(int(after.HeapAlloc)-int(before.HeapAlloc)))
	fmt.Printf("real profile:           %d units, %d deps (%d entries), JSON %s (gzip %s)\n",
		len(real.Units), len(real.Deps), entries(real), mb(realJSONSize), mb(realGz))

	var list []string
	switch {
	case *headers != "":
		list, err = readLines(*headers)
	default:
		list, err = patchHeaders(*patches)
	}
	if err != nil {
		log.Fatal(err)
	}
	keep := func(u profile.Unit) bool { return !*cOnly || strings.HasSuffix(u.Source, ".c") }
	realIx, stIx := profile.NewIndex(real), profile.NewIndex(st)

	if *explain != "" {
		in := func(ix *profile.Index) map[string]bool {
			m := map[string]bool{}
			for _, u := range ix.Units(*explain) {
				m[u.Object] = true
			}
			return m
		}
		r, s := in(realIx), in(stIx)
		for _, o := range slices.Sorted(maps.Keys(r)) {
			if !s[o] {
				fmt.Println("real only:  ", o)
			}
		}
		for _, o := range slices.Sorted(maps.Keys(s)) {
			if !r[o] {
				fmt.Println("static only:", o)
			}
		}
	}

	fmt.Printf("\n%d headers changed by the fixes\n", len(list))
	tot := compare(os.Stdout, list, realIx, stIx, keep, !*quiet)
	tot.print(os.Stdout)
	if *all {
		var hs []string
		for h := range real.Deps {
			if strings.HasSuffix(h, ".h") && !strings.HasPrefix(h, "include/generated/") && !strings.Contains(h, "/generated/") {
				if _, err := os.Stat(filepath.Join(*tree, h)); err == nil {
					hs = append(hs, h)
				}
			}
		}
		slices.Sort(hs)
		fmt.Printf("\nevery header of the tree in the real profile's Deps: %d\n", len(hs))
		t := compare(os.Stdout, hs, realIx, stIx, keep, false)
		t.print(os.Stdout)
		t.worst(os.Stdout, 15)
	}
}

func static(ctx context.Context, tree string, cfg kconfig.Config, headers bool) (*profile.Profile, time.Duration) {
	start := time.Now()
	p, err := kbuild.Static(ctx, tree, cfg, kbuild.StaticOptions{Headers: headers})
	if err != nil {
		log.Fatal(err)
	}
	return p, time.Since(start)
}

func readProfile(name string) (*profile.Profile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	p := new(profile.Profile)
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// sizes are the profile's JSON size and gzipped size.
func sizes(p *profile.Profile) (int, int) {
	data, err := json.Marshal(p)
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return len(data), buf.Len()
}

func mb(n int) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func readLines(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// patchHeaders lists the .h files the fixes in dir change.
func patchHeaders(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.patch"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		for _, f := range ktree.PatchFiles(data) {
			if strings.HasSuffix(f, ".h") && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

type totals struct {
	headers, neither, full int
	noUnit                 int // real unit reads by units the static profile lacks
	real, static, tp       int
	missed                 []string // headers with a real unit the static graph lacks
	rows                   []row
}

type row struct {
	h                string
	real, static, tp int
}

func (r row) precision() float64 { return ratio(r.tp, r.static) }
func (r row) recall() float64    { return ratio(r.tp, r.real) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func compare(w *os.File, list []string, realIx, stIx *profile.Index, keep func(profile.Unit) bool, table bool) *totals {
	units := func(ix *profile.Index, h string) map[string]bool {
		s := map[string]bool{}
		for _, u := range ix.Units(h) {
			if keep(u) {
				s[u.Object] = true
			}
		}
		return s
	}
	t := &totals{}
	// The real units the static profile lacks (compiled from sources the
	// build generates) are not the include graph's to find: counted apart.
	stObjs := map[string]bool{}
	for _, u := range stIx.Profile().Units {
		stObjs[u.Object] = true
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	if table {
		fmt.Fprintln(tw, "header\treal\tstatic\ttp\tprecision\trecall\t")
	}
	for _, h := range list {
		r, s := units(realIx, h), units(stIx, h)
		for o := range r {
			if !stObjs[o] {
				delete(r, o)
				t.noUnit++
			}
		}
		tp := 0
		for o := range s {
			if r[o] {
				tp++
			}
		}
		t.headers++
		t.real += len(r)
		t.static += len(s)
		t.tp += tp
		row := row{h, len(r), len(s), tp}
		t.rows = append(t.rows, row)
		switch {
		case len(r) == 0 && len(s) == 0:
			t.neither++
		case tp == len(r):
			t.full++
		}
		if tp < len(r) {
			t.missed = append(t.missed, fmt.Sprintf("%s (%d of %d)", h, len(r)-tp, len(r)))
		}
		if table {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%.3f\t\n", h, len(r), len(s), tp, row.precision(), row.recall())
		}
	}
	tw.Flush()
	return t
}

func (t *totals) print(w *os.File) {
	read := t.headers - t.neither
	fmt.Fprintf(w, "totals: %d headers (%d read by no unit in either), real %d unit reads, static %d, true positives %d\n",
		t.headers, t.neither, t.real, t.static, t.tp)
	fmt.Fprintf(w, "micro-averaged precision %.4f recall %.4f; recall 100%% on %d of %d headers read\n",
		ratio(t.tp, t.static), ratio(t.tp, t.real), t.full, read)
	if t.noUnit > 0 {
		fmt.Fprintf(w, "(left out: %d real unit reads by units the static profile lacks, with generated sources; recall with them %.4f)\n",
			t.noUnit, ratio(t.tp, t.real+t.noUnit))
	}
	for i, m := range t.missed {
		if i == 40 {
			fmt.Fprintf(w, "  ... and %d more headers with missed units\n", len(t.missed)-i)
			break
		}
		fmt.Fprintln(w, "  missed units:", m)
	}
}

// worst lists the headers with the most extra units.
func (t *totals) worst(w *os.File, n int) {
	rows := slices.Clone(t.rows)
	slices.SortFunc(rows, func(a, b row) int { return (b.static - b.tp) - (a.static - a.tp) })
	fmt.Fprintln(w, "most extra units:")
	for _, r := range rows[:min(n, len(rows))] {
		fmt.Fprintf(w, "  %s: real %d static %d tp %d\n", r.h, r.real, r.static, r.tp)
	}
}
