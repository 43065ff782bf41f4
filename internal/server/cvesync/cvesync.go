// Package cvesync mirrors the kernel CNA's vulns repository and brings the
// store up to date with it: a full read on the first run, afterwards only
// the records that git diff names between the last synced commit and the
// new one. Each run lands in one database transaction, so an interrupted
// run leaves the store as it was and a rerun finishes the job.
package cvesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/gitrepo"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// DefaultSource is the kernel CNA's repository.
const DefaultSource = "https://git.kernel.org/pub/scm/linux/security/vulns.git"

const (
	publishedDir = "cve/published"
	rejectedDir  = "cve/rejected"
)

// Options configure a sync run.
type Options struct {
	Source    string // URL or path of the repository (or a git bundle)
	Rev       string // commit to sync to; "" for the source's HEAD
	MirrorDir string // where the bare mirror lives
	// NoFetch uses the mirror as it is (it must exist).
	NoFetch bool
	// Full re-reads every record even when an incremental run would do.
	Full bool
	// Progress, when set, is told how many records of total are parsed.
	Progress func(done, total int)
	Log      *slog.Logger
}

// Summary says what a run did.
type Summary struct {
	Mode           string `json:"mode"` // full, incremental or up-to-date
	Source         string `json:"source"`
	Commit         string `json:"commit"`
	PreviousCommit string `json:"previous_commit,omitempty"`
	Records        int    `json:"records_read"`
	Added          int    `json:"added"`
	Updated        int    `json:"updated"`
	Rejected       int    `json:"rejected"`
	Deleted        int    `json:"deleted"`
	Malformed      int    `json:"malformed"`
	// Kept are malformed records whose last good version stays stored.
	Kept int `json:"kept"`
	// Problems are the malformed records, each with its reason.
	Problems []Problem     `json:"problems,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Problem is a record that could not be read, as summaries print it (the
// store's Problem has no JSON names).
type Problem struct {
	ID     string `json:"id"`
	File   string `json:"file"`
	Reason string `json:"reason"`
}

func problemList(ps []store.Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = Problem(p)
	}
	return out
}

var idPattern = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// fileSet is one CVE's files in one directory of the repository.
type fileSet struct {
	id     string
	status vulns.Status
	paths  map[string]string // extension → path
	oids   map[string]string // extension → blob
}

// wanted are the files a Record is built from; others (.vulnerable,
// .reference, .message) are not needed yet and are not read.
var wanted = map[string]bool{"json": true, "dyad": true, "sha1": true, "cvss": true, "mbox": true}

// Run syncs st with the repository.
func Run(ctx context.Context, st store.Store, opts Options) (Summary, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	// The store records the source as git is given it: a relative path
	// would mean another directory on the next run.
	source, err := gitrepo.Source(opts.Source)
	if err != nil {
		return Summary{Source: opts.Source}, err
	}
	opts.Source = source
	sum := Summary{Source: opts.Source}
	if opts.MirrorDir == "" {
		return sum, errors.New("sync: no mirror directory")
	}
	lock, err := lockDir(opts.MirrorDir, !opts.NoFetch)
	if err != nil {
		return sum, err
	}
	defer lock.release()
	var repo *gitrepo.Repo
	if opts.NoFetch {
		repo, err = gitrepo.Open(opts.MirrorDir)
	} else {
		// The exclusive lock makes every clone left beside the mirror one
		// that a killed run abandoned.
		removed, rerr := gitrepo.RemoveStaleClones(ctx, opts.MirrorDir)
		for _, dir := range removed {
			log.Info("removed the clone of a killed sync", "dir", dir)
		}
		if rerr != nil {
			return sum, rerr
		}
		log.Info("fetching", "source", opts.Source, "mirror", opts.MirrorDir)
		repo, err = gitrepo.Mirror(ctx, opts.Source, opts.MirrorDir)
	}
	if err != nil {
		return sum, err
	}
	target, err := repo.Resolve(ctx, opts.Rev)
	if err != nil {
		return sum, err
	}
	sum.Commit = target
	state, err := st.SyncState(ctx)
	if err != nil {
		return sum, err
	}
	sum.PreviousCommit = state.Commit

	full := opts.Full || state.Commit == ""
	if !full {
		ok, err := repo.IsAncestor(ctx, state.Commit, target)
		if err != nil || !ok {
			// History was rewritten or the source changed: a diff from the
			// old commit would not mean anything.
			log.Warn("last synced commit is not an ancestor of the target; doing a full sync", "last", state.Commit, "target", target)
			full = true
		}
	}
	if !full && state.Commit == target {
		sum.Mode = "up-to-date"
		sum.Duration = time.Since(start)
		return sum, nil
	}

	entries, err := repo.LsTree(ctx, target, publishedDir, rejectedDir)
	if err != nil {
		return sum, err
	}
	sets := groupFiles(entries)

	batch := &store.SyncBatch{Full: full, State: store.SyncState{Source: opts.Source, Commit: target, SyncedAt: time.Now().UTC()}}
	var todo []*fileSet
	dates := make(chan dateResult, 1)
	if full {
		sum.Mode = "full"
		for _, id := range sortedKeys(sets) {
			todo = append(todo, sets[id])
		}
		go func() {
			d, err := repo.FirstAddedByDay(ctx, "", target, ".json", publishedDir, rejectedDir)
			dates <- dateResult{d, err}
		}()
	} else {
		sum.Mode = "incremental"
		changes, err := repo.Diff(ctx, state.Commit, target, publishedDir, rejectedDir)
		if err != nil {
			return sum, err
		}
		touched := map[string]bool{}
		for _, c := range changes {
			if id := recordID(c.Path); id != "" {
				touched[id] = true
			}
		}
		for _, id := range sortedKeys(touched) {
			batch.ProblemIDs = append(batch.ProblemIDs, id)
			if fs, ok := sets[id]; ok {
				todo = append(todo, fs)
			} else {
				batch.Deletes = append(batch.Deletes, id)
			}
		}
		go func() {
			d, err := repo.FirstAddedByDay(ctx, state.Commit, target, ".json", publishedDir, rejectedDir)
			dates <- dateResult{d, err}
		}()
	}
	log.Info("reading records", "mode", sum.Mode, "records", len(todo), "commit", target)

	recs, problems, err := readRecords(ctx, repo, todo, opts.Progress)
	if err != nil {
		return sum, err
	}
	log.Debug("records parsed", "elapsed", time.Since(start))
	dr := <-dates
	log.Debug("records dated", "elapsed", time.Since(start))
	if dr.err != nil {
		return sum, fmt.Errorf("date records: %w", dr.err)
	}
	for i := range recs {
		recs[i].FirstSeen = firstSeen(dr.dates, recs[i].ID)
	}
	sum.Records = len(todo)
	kept := 0
	if full {
		// A full batch replaces every repository record: carry over the
		// stored versions of the malformed ones, as an incremental run
		// leaves them, so that both modes end in the same database.
		if recs, kept, err = keepLastGood(ctx, st, recs, problems); err != nil {
			return sum, err
		}
	}
	batch.Upserts = recs
	batch.Problems = problems
	counts, err := st.ApplySync(ctx, batch)
	if err != nil {
		return sum, err
	}
	log.Debug("records stored", "elapsed", time.Since(start))
	// Carried-over records were written back as they were: not updates.
	sum.Added, sum.Updated, sum.Rejected, sum.Deleted = counts.Added, counts.Updated-kept, counts.Rejected, counts.Deleted
	sum.Malformed = len(problems)
	sum.Kept = kept
	if !full {
		for _, p := range problems {
			if r, err := st.CVE(ctx, p.ID); err == nil && r.Source == vulns.SourceRepo {
				sum.Kept++
			}
		}
	}
	sum.Problems = problemList(problems)
	sum.Duration = time.Since(start)
	return sum, nil
}

// keepLastGood adds to recs the stored repository version of each record
// that is malformed now, and says how many it added.
//
// A malformed record keeps its last good version rather than being
// deleted: the CNA fixes a bad commit with the next one, and deleting
// meanwhile would make the record vanish from reports, and its first-seen
// date with it, for a typo. The problem stays recorded (sync status lists
// it) until a good version replaces it. A record deleted upstream is
// deleted in both modes; one that was never good is not stored in either.
func keepLastGood(ctx context.Context, st store.Store, recs []vulns.Record, problems []store.Problem) ([]vulns.Record, int, error) {
	kept := 0
	seen := map[string]bool{}
	for _, p := range problems {
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		old, err := st.CVE(ctx, p.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("keep last good version of %s: %w", p.ID, err)
		}
		// A record known only from a mail is not the repository's to
		// replace: a full run leaves it alone anyway.
		if old.Source != vulns.SourceRepo {
			continue
		}
		recs = append(recs, old)
		kept++
	}
	return recs, kept, nil
}

type dateResult struct {
	dates map[string]time.Time
	err   error
}

// firstSeen is the oldest time a .json of id appeared, in either directory.
func firstSeen(dates map[string]time.Time, id string) time.Time {
	year := strings.SplitN(id, "-", 3)[1]
	var first time.Time
	for _, dir := range []string{publishedDir, rejectedDir} {
		if t, ok := dates[dir+"/"+year+"/"+id+".json"]; ok && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// recordID is the CVE ID a repository path belongs to, or "".
func recordID(p string) string {
	base := path.Base(p)
	id, _, _ := strings.Cut(base, ".")
	if !idPattern.MatchString(id) {
		return ""
	}
	return id
}

// groupFiles builds each CVE's file set. A record is keyed on its .json: a
// published .json makes it published, else a rejected .json makes it
// rejected; stray files without a .json (left behind by rejections, or
// bare reservations) make no record.
func groupFiles(entries []gitrepo.Entry) map[string]*fileSet {
	byDir := map[vulns.Status]map[string]*fileSet{vulns.StatusPublished: {}, vulns.StatusRejected: {}}
	for _, e := range entries {
		status := vulns.StatusPublished
		if strings.HasPrefix(e.Path, rejectedDir+"/") {
			status = vulns.StatusRejected
		}
		base := path.Base(e.Path)
		id, ext, ok := strings.Cut(base, ".")
		if !ok || !idPattern.MatchString(id) || !wanted[ext] {
			continue
		}
		fs := byDir[status][id]
		if fs == nil {
			fs = &fileSet{id: id, status: status, paths: map[string]string{}, oids: map[string]string{}}
			byDir[status][id] = fs
		}
		fs.paths[ext] = e.Path
		fs.oids[ext] = e.OID
	}
	sets := map[string]*fileSet{}
	for _, status := range []vulns.Status{vulns.StatusRejected, vulns.StatusPublished} {
		for id, fs := range byDir[status] {
			if _, ok := fs.oids["json"]; ok {
				sets[id] = fs
			}
		}
	}
	return sets
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readRecords reads the blobs of sets through one git process and parses
// them on the other cores as they arrive.
func readRecords(ctx context.Context, repo *gitrepo.Repo, sets []*fileSet, progress func(int, int)) ([]vulns.Record, []store.Problem, error) {
	type blobRef struct {
		set int
		ext string
	}
	var oids []string
	var refs []blobRef
	for i, fs := range sets {
		for _, ext := range sortedKeys(fs.oids) {
			oids = append(oids, fs.oids[ext])
			refs = append(refs, blobRef{i, ext})
		}
	}
	type job struct {
		set   int
		files map[string][]byte
	}
	jobs := make(chan job, 256)
	recs := make([]vulns.Record, len(sets))
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	workers := max(1, runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	done := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				fs := sets[j.set]
				recs[j.set], errs[j.set] = vulns.Assemble(fs.id, fs.status, j.files)
				if progress != nil {
					mu.Lock()
					done++
					if done%256 == 0 || done == len(sets) {
						progress(done, len(sets))
					}
					mu.Unlock()
				}
			}
		}()
	}
	cur := -1
	var files map[string][]byte
	readErr := repo.ReadBlobs(ctx, oids, func(i int, data []byte) error {
		ref := refs[i]
		if ref.set != cur {
			if files != nil {
				jobs <- job{cur, files}
			}
			cur, files = ref.set, map[string][]byte{}
		}
		files[ref.ext] = data
		return nil
	})
	if readErr == nil && files != nil {
		jobs <- job{cur, files}
	}
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return nil, nil, fmt.Errorf("read records: %w", readErr)
	}
	out := recs[:0]
	var problems []store.Problem
	for i, err := range errs {
		if err != nil {
			problems = append(problems, problemOf(sets[i], err))
			continue
		}
		out = append(out, recs[i])
	}
	return out, problems, nil
}

func problemOf(fs *fileSet, err error) store.Problem {
	p := store.Problem{ID: fs.id, File: fs.paths["json"], Reason: err.Error()}
	var re *vulns.RecordError
	if errors.As(err, &re) && re.File != "" {
		if full, ok := fs.paths[re.File]; ok {
			p.File = full
		}
		if re.Err != nil {
			p.Reason = re.Err.Error()
		}
	}
	return p
}
