// Package gitrepo keeps a bare mirror of a git repository and reads trees,
// blobs, diffs and history from it by driving the git command line, which
// is far faster on a 12k-commit, 80k-file history than a pure-Go reader.
package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoGit is returned when the git binary is not installed.
var ErrNoGit = errors.New("git not found in PATH (install it: apt-get install git)")

// Repo is a bare mirror on disk.
type Repo struct {
	Dir string
}

// Source checks a repository source given by a user and returns it the way
// git should be given it: a URL (scheme://…) or scp-style address
// (host:path, user@host:path) as it is, and a local path (a directory or a
// bundle) made absolute, because the mirror remembers it as its remote and
// later fetches run inside the mirror, where a relative path means
// something else. A source that git could take for an option is refused.
func Source(source string) (string, error) {
	if source == "" {
		return "", errors.New("check source: empty repository source")
	}
	if strings.HasPrefix(source, "-") {
		return "", fmt.Errorf("check source %q: a repository source cannot start with \"-\" (for a local path that does, write ./%s)", source, source)
	}
	if isRemote(source) {
		return source, nil
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return "", fmt.Errorf("check source %q: %w", source, err)
	}
	return abs, nil
}

// isRemote reports whether git reads source as a URL rather than a path:
// scheme://…, or git's scp-like syntax, a colon with no slash before it
// (which also covers git's transport::address).
func isRemote(source string) bool {
	if strings.Contains(source, "://") {
		return true
	}
	colon := strings.IndexByte(source, ':')
	return colon > 0 && !strings.Contains(source[:colon], "/")
}

// Mirror makes dir a bare mirror of source, cloning it on first use and
// fetching afterwards. The clone goes to a temporary directory first so that
// an interrupted clone never leaves a half-made mirror behind (one left by
// kill -9 is for RemoveStaleClones). A local source is made absolute (see
// Source). Calls for one dir must not overlap: git's own locks would make
// the second fail.
func Mirror(ctx context.Context, source, dir string) (*Repo, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, ErrNoGit
	}
	source, err := Source(source)
	if err != nil {
		return nil, err
	}
	r := &Repo{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		// "--" everywhere a user's value follows: git must never read it
		// as an option (--upload-pack=… runs a command).
		if _, err := r.git(ctx, "remote", "set-url", "--", "origin", source); err != nil {
			return nil, err
		}
		if _, err := r.git(ctx, "fetch", "--prune", "--quiet", "--", "origin"); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", source, err)
		}
		return r, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create mirror dir: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), clonePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create mirror dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "git", "clone", "--mirror", "--quiet", "--", source, tmp)
	cmd.Env = gitEnv()
	detach(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("clone %s: %w: %s", source, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("install mirror: %w", err)
	}
	return r, nil
}

// Open uses an existing repository (bare or not) without fetching.
func Open(dir string) (*Repo, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, ErrNoGit
	}
	return &Repo{Dir: dir}, nil
}

func (r *Repo) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.Dir}, args...)...)
	cmd.Env = gitEnv()
	detach(cmd)
	return cmd
}

// gitEnv is the environment git runs in: no password prompts (git runs in
// a process group of its own, where reading the terminal would stop it)
// and messages in English, which errors quote.
func gitEnv() []string {
	return append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

func (r *Repo) git(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Resolve turns a revision into a full commit id. An empty rev means the
// mirror's HEAD, or, when HEAD names no branch the source has (a bundle
// often has no HEAD), its only branch or its master/main.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		// rev-parse has no "--" that keeps --verify: refuse what it would
		// read as an option.
		return "", fmt.Errorf("resolve revision %q: a revision cannot start with \"-\"", rev)
	}
	if rev != "" {
		out, err := r.git(ctx, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
		if err != nil {
			return "", fmt.Errorf("resolve revision %q: not a commit in %s", rev, r.Dir)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if out, err := r.git(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	out, err := r.git(ctx, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
	if err != nil {
		return "", err
	}
	heads := map[string]string{}
	var only string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, oid, ok := strings.Cut(line, " ")
		if ok {
			heads[name] = oid
			only = oid
		}
	}
	for _, b := range []string{"refs/heads/master", "refs/heads/main"} {
		if oid, ok := heads[b]; ok {
			return oid, nil
		}
	}
	if len(heads) == 1 {
		return only, nil
	}
	return "", fmt.Errorf("repository %s has no HEAD and %d branches: pass --rev", r.Dir, len(heads))
}

// IsAncestor reports whether a is an ancestor of (or equal to) b.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	cmd := r.command(ctx, "merge-base", "--is-ancestor", a, b)
	err := cmd.Run()
	if err == nil {
		return true, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	return false, fmt.Errorf("git merge-base %s %s: %w", a, b, err)
}

// Entry is one blob of a tree.
type Entry struct {
	OID  string
	Path string
}

// LsTree lists the blobs under paths at rev, recursively.
func (r *Repo) LsTree(ctx context.Context, rev string, paths ...string) ([]Entry, error) {
	out, err := r.git(ctx, append([]string{"ls-tree", "-r", "-z", rev, "--"}, paths...)...)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, path, ok := bytes.Cut(rec, []byte{'\t'})
		if !ok {
			return nil, fmt.Errorf("git ls-tree: malformed line %q", rec)
		}
		f := strings.Fields(string(meta))
		if len(f) != 3 || f[1] != "blob" {
			continue
		}
		entries = append(entries, Entry{OID: f[2], Path: string(path)})
	}
	return entries, nil
}

// ReadBlobs streams the contents of oids, in order, to fn through one
// `git cat-file --batch` process.
func (r *Repo) ReadBlobs(ctx context.Context, oids []string, fn func(i int, data []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := r.command(ctx, "cat-file", "--batch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start git cat-file: %w", err)
	}
	writeErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(stdin, 64<<10)
		for _, oid := range oids {
			if _, err := w.WriteString(oid + "\n"); err != nil {
				writeErr <- err
				return
			}
		}
		err := w.Flush()
		stdin.Close()
		writeErr <- err
	}()
	br := bufio.NewReaderSize(stdout, 1<<20)
	var readErr error
	for i := range oids {
		header, err := br.ReadString('\n')
		if err != nil {
			readErr = fmt.Errorf("git cat-file: read header: %w", err)
			break
		}
		f := strings.Fields(header)
		if len(f) != 3 {
			readErr = fmt.Errorf("git cat-file: %s", strings.TrimSpace(header))
			break
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			readErr = fmt.Errorf("git cat-file: bad size in %q", header)
			break
		}
		data := make([]byte, size+1) // content plus the trailing newline
		if _, err := io.ReadFull(br, data); err != nil {
			readErr = fmt.Errorf("git cat-file: read %s: %w", oids[i], err)
			break
		}
		if err := fn(i, data[:size]); err != nil {
			readErr = err
			break
		}
	}
	if readErr != nil {
		cancel()
		_ = cmd.Wait()
		return readErr
	}
	if err := <-writeErr; err != nil {
		_ = cmd.Wait()
		return fmt.Errorf("git cat-file: write: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Change is one path of a diff between two commits (renames are split
// into a deletion and an addition).
type Change struct {
	Status byte // 'A', 'M', 'D', 'T'
	Path   string
}

// Diff lists the paths under paths that differ between commits a and b.
func (r *Repo) Diff(ctx context.Context, a, b string, paths ...string) ([]Change, error) {
	out, err := r.git(ctx, append([]string{"diff", "--no-renames", "--name-status", "-z", a, b, "--"}, paths...)...)
	if err != nil {
		return nil, err
	}
	fields := bytes.Split(out, []byte{0})
	var changes []Change
	for i := 0; i+1 < len(fields); i += 2 {
		if len(fields[i]) == 0 {
			break
		}
		changes = append(changes, Change{Status: fields[i][0], Path: string(fields[i+1])})
	}
	return changes, nil
}

// FirstAddedByDay returns, for every path under paths whose name ends in
// suffix and that was added in the first-parent history of target after
// base (all of it when base is ""), the UTC day on which it first appeared.
//
// It compares one snapshot per day (the day's last first-parent commit)
// instead of every commit: a flat directory of 40,000 files makes each tree
// diff costly, and the day is what users filter on. Because snapshots are
// fixed by the history alone, a sync to A then to B dates every path as a
// sync straight to B does.
func (r *Repo) FirstAddedByDay(ctx context.Context, base, target, suffix string, paths ...string) (map[string]time.Time, error) {
	rng := target
	if base != "" {
		rng = base + ".." + target
	}
	out, err := r.git(ctx, "log", "--first-parent", "--format=%H %ct", rng)
	if err != nil {
		return nil, err
	}
	type snap struct {
		commit string
		day    time.Time
	}
	var snaps []snap // newest first
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		oid, ct, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("git log: bad time %q", line)
		}
		day := time.Unix(sec, 0).UTC().Truncate(24 * time.Hour)
		// A newer commit of the same day already stands for it.
		if len(snaps) > 0 && snaps[len(snaps)-1].day.Equal(day) {
			continue
		}
		snaps = append(snaps, snap{oid, day})
	}
	if len(snaps) == 0 {
		return map[string]time.Time{}, nil
	}
	// Pairs for diff-tree --stdin: "<commit> <older snapshot>", or a lone
	// root commit, which --root diffs against the empty tree.
	var stdin strings.Builder
	dayOf := map[string]time.Time{}
	for i, s := range snaps {
		dayOf[s.commit] = s.day
		older := base
		if i+1 < len(snaps) {
			older = snaps[i+1].commit
		}
		stdin.WriteString(s.commit)
		if older != "" {
			stdin.WriteString(" " + older)
		}
		stdin.WriteString("\n")
	}
	args := append([]string{"diff-tree", "--stdin", "--root", "-r", "--no-renames", "--diff-filter=A", "--name-only", "--"}, paths...)
	cmd := r.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	diff, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("git diff-tree: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	first := make(map[string]time.Time)
	var day time.Time
	for _, line := range strings.Split(string(diff), "\n") {
		if line == "" {
			continue
		}
		// diff-tree prints the commit id line before each commit's paths.
		if d, ok := dayOf[strings.Fields(line)[0]]; ok && len(line) >= 40 && !strings.Contains(line, "/") {
			day = d
			continue
		}
		if strings.HasSuffix(line, suffix) {
			if old, ok := first[line]; !ok || day.Before(old) {
				first[line] = day
			}
		}
	}
	return first, nil
}
