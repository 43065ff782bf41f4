// Command syncbench measures `tuxtape sync` on the real CNA bundle, side by
// side with a baseline that only reads and JSON-decodes every record file,
// and prints medians and their ratio.
//
//	go run ./bench/syncbench -bundle ../shared/data/vulns-2026-08-19.bundle
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

func main() {
	bundle := flag.String("bundle", "../shared/data/vulns-2026-08-19.bundle", "CNA data bundle")
	runs := flag.Int("runs", 3, "runs of each measurement")
	day := flag.String("day", "2026-08-16", "UTC day whose commits the incremental sync covers")
	dsn := flag.String("db", "", "database to sync into (default: a fresh SQLite file each run); a postgres:// DSN is reused, so give an empty database")
	flag.Parse()
	ctx := context.Background()
	work, err := os.MkdirTemp("", "syncbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	mirror := filepath.Join(work, "vulns.git")
	checkout := filepath.Join(work, "checkout")
	run("git", "clone", "--quiet", "--mirror", *bundle, mirror)
	head := strings.TrimSpace(run("git", "-C", mirror, "rev-parse", "refs/heads/cutoff"))
	// The day's commits are those whose committer date, in the committer's
	// own time zone, falls on -day: from the parent of the oldest to the newest.
	var dayCommits []string
	for _, line := range strings.Split(run("git", "-C", mirror, "log", "--format=%H %cd", "--date=short", head), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == *day {
			dayCommits = append(dayCommits, f[0])
		}
	}
	if len(dayCommits) == 0 {
		log.Fatalf("no commits on %s", *day)
	}
	after := dayCommits[0]
	before := strings.TrimSpace(run("git", "-C", mirror, "rev-parse", dayCommits[len(dayCommits)-1]+"^"))
	commits := strings.Count(run("git", "-C", mirror, "rev-list", before+".."+after), "\n")
	run("git", "clone", "--quiet", "--shared", "--no-checkout", mirror, checkout)
	run("git", "-C", checkout, "checkout", "--quiet", head)

	var baseline, full, incr []time.Duration
	var records int
	for i := 0; i < *runs; i++ {
		t := time.Now()
		records = readAndDecode(filepath.Join(checkout, "cve"))
		baseline = append(baseline, time.Since(t))

		db := *dsn
		if db == "" {
			db = filepath.Join(work, fmt.Sprintf("full%d.db", i))
		}
		full = append(full, timeSync(ctx, db, mirror, head, false))

		db2 := *dsn
		if db2 == "" {
			db2 = filepath.Join(work, fmt.Sprintf("incr%d.db", i))
		}
		timeSync(ctx, db2, mirror, before, true)
		incr = append(incr, timeSync(ctx, db2, mirror, after, false))
	}
	mb, mf, mi := median(baseline), median(full), median(incr)
	fmt.Printf("record files read by the baseline: %d (at %s)\n", records, head[:12])
	fmt.Printf("baseline (read + JSON-decode every record file): median %6.2fs  %v\n", mb.Seconds(), baseline)
	fmt.Printf("full sync into %-6s from empty:                 median %6.2fs  %v\n", backend(*dsn), mf.Seconds(), full)
	fmt.Printf("ratio full sync / baseline:                      %.2fx\n", mf.Seconds()/mb.Seconds())
	fmt.Printf("incremental sync of %s (%d commits, %s..%s): median %6.3fs  %v\n", *day, commits, before[:9], after[:9], mi.Seconds(), incr)
}

func backend(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "pg"
	}
	return "sqlite"
}

// timeSync syncs db to rev; reset empties it first (for PostgreSQL reuse).
func timeSync(ctx context.Context, db, mirror, rev string, reset bool) time.Duration {
	st, err := store.Open(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	t := time.Now()
	if _, err := cvesync.Run(ctx, st, cvesync.Options{Source: "bundle", MirrorDir: mirror, NoFetch: true, Rev: rev, Full: reset || strings.HasPrefix(db, "postgres")}); err != nil {
		log.Fatal(err)
	}
	return time.Since(t)
}

// readAndDecode reads every record file under dir and decodes each .json.
func readAndDecode(dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.Contains(p, "/published/") || strings.Contains(p, "/rejected/")) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if strings.HasSuffix(p, ".json") {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	return n
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func run(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		log.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}
