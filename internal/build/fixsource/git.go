package fixsource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Git takes fixes from a kernel git repository with the stable tags.
type Git struct {
	// Repo is the repository: a work tree or a bare one. It is only read.
	Repo string
	// TagPrefix makes a version's tag: "v" gives v6.1.176 (linux-stable's).
	// Default "v".
	TagPrefix string
	Log       *slog.Logger
}

func (g Git) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log.With("component", "fixsource")
}

func (g Git) tag(v vulns.Version) string {
	if g.TagPrefix == "" {
		return "v" + v.String()
	}
	return g.TagPrefix + v.String()
}

// Fetch returns rec's fix for a kernel at version (its upstream version,
// "6.1.176") as `git format-patch -1 --stdout` of the commit.
func (g Git) Fetch(ctx context.Context, rec vulns.Record, version string) (*Fix, error) {
	v, err := vulns.ParseVersion(version)
	if err != nil {
		return nil, fmt.Errorf("fetch fix of %s: %w: %w", rec.ID, ErrBadInput, err)
	}
	t, err := pickFix(rec, v)
	if err != nil {
		return nil, fmt.Errorf("fetch fix: %w", err)
	}
	diff, err := g.formatPatch(ctx, t.commit)
	if err != nil {
		return nil, fmt.Errorf("fetch fix of %s: %w", rec.ID, err)
	}
	f := &Fix{
		CVE: rec.ID, Diff: diff, Kind: KindGit, Commit: t.commit, Branch: v.Branch(),
		Mainline: t.mainline, FixedVersion: t.version, From: g.tag(v), To: t.commit, Files: diffFiles(diff),
	}
	if t.mainline {
		f.Note = MainlineNote
	}
	g.log().Info("fetched fix", "cve", rec.ID, "commit", t.commit, "mainline", t.mainline, "files", f.Files)
	return f, nil
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// formatPatch exports one commit. The commit must be a hex id: nothing a
// record says can become an option or a revision expression.
func (g Git) formatPatch(ctx context.Context, commit string) ([]byte, error) {
	if err := checkCommit(commit); err != nil {
		return nil, err
	}
	if _, err := g.git(ctx, "cat-file", "-e", commit+"^{commit}"); err != nil {
		return nil, fmt.Errorf("%w: commit %s is not in %s", ErrNotInSource, commit, g.Repo)
	}
	// The prefixes and diff options are spelled out so that a user's git
	// configuration (diff.noprefix, external diff drivers) cannot change
	// what patch -p1 will be given.
	out, err := g.git(ctx, "format-patch", "-1", "--stdout", "--no-color", "--no-ext-diff", "--no-textconv",
		"--src-prefix=a/", "--dst-prefix=b/", "--no-signature", commit, "--")
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: commit %s exports an empty patch (a merge?)", ErrNotInSource, commit)
	}
	return out, nil
}

func checkCommit(c string) error {
	if strings.HasPrefix(c, "-") || !commitRE.MatchString(c) {
		return fmt.Errorf("%w: commit %q: want a hex commit id", ErrBadInput, c)
	}
	return nil
}

// checkRef refuses what git would read as an option or a range.
func checkRef(r string) error {
	if r == "" || strings.HasPrefix(r, "-") || strings.ContainsAny(r, " \t\n:^~*?[\\") || strings.Contains(r, "..") {
		return fmt.Errorf("%w: ref %q", ErrBadInput, r)
	}
	return nil
}

// git runs git read-only on the repository.
func (g Git) git(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.Repo}, args...)...)
	// No prompts, English messages (errors quote them), no pager, and no
	// system or global configuration that could alter the output.
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "GIT_PAGER=cat", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	// Its own process group, killed whole on cancel: git starts helpers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := &cmdout.Buffer{Max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, cmdout.TailLine(stderr.String(), 3))
	}
	return out, nil
}

// Prerequisites looks for the commits that define the names fix lacks:
// among the commits after the kernel's tag and before the fix on its
// branch, the oldest whose diff adds a definition of each name. A name no
// commit defines is in the second result. For a mainline fix the window
// is all of mainline since the tag's fork: slower, and a reviewer's call.
func (g Git) Prerequisites(ctx context.Context, fix *Fix, missing []Missing) ([]Prerequisite, []Missing, error) {
	if fix.Kind != KindGit {
		return nil, nil, fmt.Errorf("find prerequisites: %w: fix is from %s, not git", ErrBadInput, fix.Kind)
	}
	if err := checkCommit(fix.Commit); err != nil {
		return nil, nil, fmt.Errorf("find prerequisites: %w", err)
	}
	if err := checkRef(fix.From); err != nil {
		return nil, nil, fmt.Errorf("find prerequisites: %w", err)
	}
	window := fix.From + ".." + fix.Commit + "~1"
	var found []Prerequisite
	var unresolved []Missing
	byCommit := map[string]int{} // commit → index in found
	for _, m := range missing {
		if m.Kind == MissingFile {
			p, err := g.addedFile(ctx, fix, window, m)
			if err != nil {
				return nil, nil, fmt.Errorf("find prerequisites of %s in %s: %w", fix.CVE, window, err)
			}
			if p == nil {
				unresolved = append(unresolved, m)
			} else if _, ok := byCommit[p.Commit]; !ok {
				byCommit[p.Commit] = len(found)
				found = append(found, *p)
			}
			continue
		}
		if !identRE.MatchString(m.Name) {
			unresolved = append(unresolved, m)
			continue
		}
		// -G narrows to commits whose diff mentions the name; reading each
		// candidate's diff decides whether it defines it.
		out, err := g.git(ctx, "log", "--format=%H", "--no-merges", "--reverse", "-G", `\b`+m.Name+`\b`, window, "--")
		if err != nil {
			return nil, nil, fmt.Errorf("find prerequisites of %s in %s: %w", fix.CVE, window, err)
		}
		resolved := false
		for _, c := range strings.Fields(string(out)) {
			diff, err := g.formatPatch(ctx, c)
			if err != nil {
				return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
			}
			file, line, ok := definition(diff, m)
			if !ok {
				continue
			}
			why := fmt.Sprintf("%s: commit %s (%q, between %s and the fix) adds %s to %s: %s",
				describe(m), c[:12], subject(diff), fix.From, m.Name, file, line)
			if i, ok := byCommit[c]; ok {
				found[i].Missing = append(found[i].Missing, m)
				found[i].Explanation += "\n" + why
			} else {
				byCommit[c] = len(found)
				found = append(found, Prerequisite{
					Missing: []Missing{m}, Diff: diff, Kind: KindGit, Commit: c, Subject: subject(diff),
					Files: diffFiles(diff), Explanation: why,
				})
			}
			resolved = true
			break
		}
		if !resolved {
			unresolved = append(unresolved, m)
		}
	}
	return found, unresolved, nil
}

// addedFile is the commit of the window that adds the file an #include
// names (beside the includer, or in include/); nil if none does.
func (g Git) addedFile(ctx context.Context, fix *Fix, window string, m Missing) (*Prerequisite, error) {
	var tries []string
	if m.File != "" {
		tries = append(tries, path.Join(path.Dir(m.File), m.Name))
	}
	tries = append(tries, path.Join("include", m.Name), path.Join("arch/x86/include", m.Name))
	for _, rel := range tries {
		if checkRel(rel) != nil {
			continue
		}
		out, err := g.git(ctx, "log", "--format=%H", "--no-merges", "--reverse", "--diff-filter=A", window, "--", rel)
		if err != nil {
			return nil, err
		}
		c, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if c == "" {
			continue
		}
		diff, err := g.formatPatch(ctx, c)
		if err != nil {
			return nil, err
		}
		return &Prerequisite{Missing: []Missing{m}, Diff: diff, Kind: KindGit, Commit: c, Subject: subject(diff), Files: diffFiles(diff),
			Explanation: fmt.Sprintf("%s: commit %s (%q, between %s and the fix) adds %s", describe(m), c[:12], subject(diff), fix.From, rel)}, nil
	}
	return nil, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// subject is a format-patch mail's subject without "[PATCH]".
func subject(mail []byte) string {
	for _, l := range strings.Split(string(mail), "\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			s = strings.TrimSpace(s)
			if i := strings.Index(s, "] "); strings.HasPrefix(s, "[") && i > 0 {
				s = s[i+2:]
			}
			return s
		}
		if l == "" {
			break
		}
	}
	return ""
}

func describe(m Missing) string {
	switch m.Kind {
	case MissingFunction:
		return "function " + m.Name + " is not declared"
	case MissingMember:
		return m.Type + " has no member " + m.Name
	case MissingIdentifier:
		return m.Name + " is undeclared"
	case MissingType:
		if m.Type != "" {
			return "type " + m.Type + " is not defined"
		}
		return "type " + m.Name + " is unknown"
	case MissingSymbol:
		return "symbol " + m.Name + " is not defined"
	case MissingFile:
		return m.File + " includes " + m.Name + ", which this source does not have"
	}
	return m.Name + " is missing"
}

// Prerequisite is a change a fix needs and does not carry.
type Prerequisite struct {
	Missing []Missing // the names it defines
	Diff    []byte
	Kind    Kind
	Commit  string // git only
	Subject string // git only
	Files   []string
	// Explanation says, per name, where the definition was found.
	Explanation string
}
