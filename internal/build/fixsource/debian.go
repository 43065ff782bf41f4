package fixsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Files is one kernel source's files, by path relative to the top of the
// tree. Path returns the name of a local copy, or an error wrapping
// fs.ErrNotExist when the source has no such file.
type Files interface {
	Path(ctx context.Context, rel string) (string, error)
	// Prefetch makes the named files local at once where that is cheaper
	// than one by one (a tarball is read once for all of them).
	Prefetch(ctx context.Context, rels ...string) error
}

// DirFiles is an unpacked source tree.
type DirFiles string

// Path implements Files.
func (d DirFiles) Path(_ context.Context, rel string) (string, error) {
	if err := checkRel(rel); err != nil {
		return "", err
	}
	p := filepath.Join(string(d), filepath.FromSlash(rel))
	st, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w: not a regular file", rel, fs.ErrNotExist)
	}
	return p, nil
}

// Prefetch implements Files: a tree has everything already.
func (DirFiles) Prefetch(context.Context, ...string) error { return nil }

func checkRel(rel string) error {
	c := path.Clean(rel)
	if rel == "" || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || c != rel {
		return fmt.Errorf("%w: path %q: want a clean path inside the tree", ErrBadInput, rel)
	}
	return nil
}

// PackageFiles are the files of a Debian linux-source package, taken from
// its tarball on demand (about 140 MB of xz: one read takes seconds, so
// Prefetch reads many at once) and kept under Dir.
type PackageFiles struct {
	Package, Version string // linux-source-6.1, 6.1.187-1
	Dir              string // where extracted files are kept
	tarball, top     string

	mu     sync.Mutex
	absent map[string]bool
}

// NewPackageFiles fetches (or reuses) the source package pkg=version with
// debpkg into opts' cache and reads files from its tarball; the files are
// kept under cacheDir/fixsource/pkg_version.
func NewPackageFiles(ctx context.Context, opts debpkg.Options, cacheDir, pkg, version string) (*PackageFiles, error) {
	base, ok := strings.CutPrefix(pkg, "linux-source-")
	if !ok || !regexp.MustCompile(`^\d+\.\d+$`).MatchString(base) {
		return nil, fmt.Errorf("source package %q: %w: want linux-source-X.Y", pkg, ErrBadInput)
	}
	// debpkg names source packages by a kernel release; any release of
	// the series names the same package.
	k, err := debpkg.NewKernel(opts, base+".0-0-source", version)
	if err != nil {
		return nil, fmt.Errorf("source package %s=%s: %w", pkg, version, err)
	}
	tarball, err := k.SourceTarball(ctx)
	if err != nil {
		return nil, fmt.Errorf("source package %s=%s: %w", pkg, version, err)
	}
	return &PackageFiles{
		Package: pkg, Version: version, Dir: filepath.Join(cacheDir, "fixsource", pkg+"_"+strings.ReplaceAll(version, ":", "%3a")),
		tarball: tarball, top: "linux-source-" + base, absent: map[string]bool{},
	}, nil
}

// Path implements Files.
func (p *PackageFiles) Path(ctx context.Context, rel string) (string, error) {
	if err := p.Prefetch(ctx, rel); err != nil {
		return "", err
	}
	return DirFiles(p.Dir).Path(ctx, rel)
}

// Prefetch implements Files with one tar pass for the files not yet kept.
func (p *PackageFiles) Prefetch(ctx context.Context, rels ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var want []string
	for _, rel := range rels {
		if err := checkRel(rel); err != nil {
			return err
		}
		if p.absent[rel] || slices.Contains(want, rel) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(p.Dir, filepath.FromSlash(rel))); err == nil {
			continue
		}
		if _, err := os.Lstat(p.absentMarker(rel)); err == nil {
			p.absent[rel] = true
			continue
		}
		want = append(want, rel)
	}
	if len(want) == 0 {
		return nil
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return fmt.Errorf("read %s=%s: %w", p.Package, p.Version, err)
	}
	tmp, err := os.MkdirTemp(p.Dir, ".extract-")
	if err != nil {
		return fmt.Errorf("read %s=%s: %w", p.Package, p.Version, err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"--extract", "--xz", "--file", p.tarball, "--directory", tmp, "--no-same-owner", "--"}
	for _, rel := range want {
		args = append(args, p.top+"/"+rel)
	}
	cmd := exec.CommandContext(ctx, "tar", args...)
	stderr := &cmdout.Buffer{Max: 8192}
	cmd.Stderr = stderr
	// tar fails when a member is missing, which is an answer here (a new
	// file, a header the package does not have): judged per file below.
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("read %s=%s: %w", p.Package, p.Version, ctx.Err())
	}
	for _, rel := range want {
		src := filepath.Join(tmp, p.top, filepath.FromSlash(rel))
		st, err := os.Lstat(src)
		if err != nil {
			if runErr != nil && !strings.Contains(stderr.String(), "Not found in archive") {
				return fmt.Errorf("read %s from %s: %w: %s", rel, p.tarball, runErr, cmdout.TailLine(stderr.String(), 3))
			}
			p.markAbsent(rel)
			continue
		}
		if !st.Mode().IsRegular() {
			p.markAbsent(rel)
			continue
		}
		dst := filepath.Join(p.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("read %s=%s: %w", p.Package, p.Version, err)
		}
		// Rename is atomic: a kept file is always whole.
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("read %s=%s: %w", p.Package, p.Version, err)
		}
	}
	return nil
}

// absentMarker is the file that remembers rel is not in the package, so
// that a later run does not read the tarball again to learn it.
func (p *PackageFiles) absentMarker(rel string) string {
	return filepath.Join(p.Dir, ".absent", filepath.FromSlash(rel))
}

func (p *PackageFiles) markAbsent(rel string) {
	p.absent[rel] = true
	m := p.absentMarker(rel)
	// Only a cache: failing to write it costs a tarball read next time.
	if os.MkdirAll(filepath.Dir(m), 0o755) == nil {
		os.WriteFile(m, nil, 0o644)
	}
}

// Debian takes fixes from a later Debian source package of the kernel's
// branch: Base is the kernel's own source, Later the package. Base should
// be an unpacked tree (DirFiles, e.g. kernelsrc.Sources.Tree): the
// prerequisite finder follows its include graph and looks for function
// bodies in it, which a tarball cannot answer quickly.
type Debian struct {
	Base  Files
	Later Files
	// LaterVersion is the package's Debian version ("6.1.187-1").
	LaterVersion string
	Log          *slog.Logger
}

// NewDebian is the Debian fix source spec (debian:linux-source-6.1=6.1.187-1)
// for a kernel whose own source is base.
func NewDebian(ctx context.Context, opts debpkg.Options, cacheDir, spec string, base Files, log *slog.Logger) (*Debian, error) {
	src, err := kernel.ParseSource(spec, "")
	if err != nil {
		return nil, fmt.Errorf("fix source %q: %w", spec, err)
	}
	pkg, ver, ok := src.DebianPackage()
	if !ok {
		return nil, fmt.Errorf("fix source %q: %w: want debian:linux-source-X.Y=VERSION", spec, ErrBadInput)
	}
	later, err := NewPackageFiles(ctx, opts, cacheDir, pkg, ver)
	if err != nil {
		return nil, err
	}
	return &Debian{Base: base, Later: later, LaterVersion: ver, Log: log}, nil
}

func (d *Debian) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log.With("component", "fixsource")
}

// upstream is a Debian version's upstream part: 6.1.187-1 → 6.1.187.
func upstream(debVersion string) (vulns.Version, error) {
	v := debVersion
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	v, _, _ = strings.Cut(v, "+")
	v, _, _ = strings.Cut(v, "~")
	return vulns.ParseVersion(v)
}

// Fetch returns the change to rec's programFiles between the kernel's
// source (at version) and the later package.
func (d *Debian) Fetch(ctx context.Context, rec vulns.Record, version string) (*Fix, error) {
	v, err := vulns.ParseVersion(version)
	if err != nil {
		return nil, fmt.Errorf("fetch fix of %s: %w: %w", rec.ID, ErrBadInput, err)
	}
	lv, err := upstream(d.LaterVersion)
	if err != nil {
		return nil, fmt.Errorf("fetch fix of %s: %w: package version %q: %w", rec.ID, ErrBadInput, d.LaterVersion, err)
	}
	if lv.Branch() != v.Branch() || lv.Compare(v) <= 0 {
		return nil, fmt.Errorf("fetch fix of %s: %w: package %s is not a later %s release than %s", rec.ID, ErrBadInput, d.LaterVersion, v.Branch(), v)
	}
	t, err := pickFix(rec, v)
	if err != nil {
		return nil, fmt.Errorf("fetch fix: %w", err)
	}
	f := &Fix{CVE: rec.ID, Kind: KindDebian, Branch: v.Branch(), FixedVersion: t.version, From: v.String(), To: d.LaterVersion}
	switch {
	case t.mainline:
		// Debian follows stable: with no branch fix, whatever changed is not
		// the CVE's fix for sure.
		f.Mainline, f.Note = true, "the branch has no stable fix; the package's changes to the files may not fix it: review carefully"
	case t.version != "":
		if fv, _ := vulns.ParseVersion(t.version); fv.Compare(lv) > 0 {
			return nil, fmt.Errorf("fetch fix of %s: %w: fixed in %s, after the package's %s", rec.ID, ErrNotInSource, fv, lv)
		}
	}
	if len(rec.ProgramFiles) == 0 {
		return nil, fmt.Errorf("fetch fix of %s: %w: the record names no programFiles", rec.ID, ErrNoFix)
	}
	diff, err := d.diffFiles(ctx, rec.ProgramFiles)
	if err != nil {
		return nil, fmt.Errorf("fetch fix of %s: %w", rec.ID, err)
	}
	if len(diff) == 0 {
		return nil, fmt.Errorf("fetch fix of %s: %w: %s does not change %s", rec.ID, ErrNotInSource, d.LaterVersion, strings.Join(rec.ProgramFiles, ", "))
	}
	f.Diff, f.Files = diff, diffFiles(diff)
	d.log().Info("fetched fix", "cve", rec.ID, "from", f.From, "to", f.To, "files", f.Files)
	return f, nil
}

// diffFiles is the unified diff of files between Base and Later, in the
// order given, as the corpus was made: a `diff --git` line, then diff -u
// with a/ and b/ labels (no timestamps, no function names in hunk headers).
func (d *Debian) diffFiles(ctx context.Context, files []string) ([]byte, error) {
	if err := d.Base.Prefetch(ctx, files...); err != nil {
		return nil, err
	}
	if err := d.Later.Prefetch(ctx, files...); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, rel := range files {
		old, err := localOrNull(ctx, d.Base, rel)
		if err != nil {
			return nil, err
		}
		nw, err := localOrNull(ctx, d.Later, rel)
		if err != nil {
			return nil, err
		}
		if old == os.DevNull && nw == os.DevNull {
			continue
		}
		oldLabel, newLabel := "a/"+rel, "b/"+rel
		if old == os.DevNull {
			oldLabel = "/dev/null"
		}
		if nw == os.DevNull {
			newLabel = "/dev/null"
		}
		cmd := exec.CommandContext(ctx, "diff", "-u", "--label", oldLabel, "--label", newLabel, "--", old, nw)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		stderr := &cmdout.Buffer{Max: 4096}
		cmd.Stderr = stderr
		body, err := cmd.Output()
		var ee *exec.ExitError
		switch {
		case err == nil:
			continue // the same
		case errors.As(err, &ee) && ee.ExitCode() == 1:
		default:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("diff %s: %w: %s", rel, err, cmdout.TailLine(stderr.String(), 3))
		}
		fmt.Fprintf(&out, "diff --git a/%s b/%s\n", rel, rel)
		out.Write(body)
	}
	return out.Bytes(), nil
}

func localOrNull(ctx context.Context, f Files, rel string) (string, error) {
	p, err := f.Path(ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return os.DevNull, nil
	}
	return p, err
}

// includeRE finds a C file's includes.
var includeRE = regexp.MustCompile(`(?m)^\s*#\s*include\s*([<"])([^>"]+)[>"]`)

// Prerequisites looks, for each missing name, at the same window's change
// (kernel version → package) of the files the compiler names and of the
// headers the fix's files include, for one that adds a definition of the
// name. Files already in fix are skipped: their change is in it.
func (d *Debian) Prerequisites(ctx context.Context, fix *Fix, missing []Missing) ([]Prerequisite, []Missing, error) {
	if fix.Kind != KindDebian {
		return nil, nil, fmt.Errorf("find prerequisites: %w: fix is from %s, not a Debian package", ErrBadInput, fix.Kind)
	}
	candidates, err := d.candidates(ctx, fix, missing)
	if err != nil {
		return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
	}
	if err := d.Base.Prefetch(ctx, candidates...); err != nil {
		return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
	}
	if err := d.Later.Prefetch(ctx, candidates...); err != nil {
		return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
	}
	diffs := map[string][]byte{}
	var found []Prerequisite
	byFile := map[string]int{}
	var unresolved []Missing
	for _, m := range missing {
		if m.Kind == MissingFile {
			p, err := d.newFile(ctx, fix, m)
			if err != nil {
				return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
			}
			if p == nil {
				unresolved = append(unresolved, m)
			} else if !slices.ContainsFunc(found, func(f Prerequisite) bool { return slices.Equal(f.Files, p.Files) }) {
				found = append(found, *p)
			}
			continue
		}
		resolved := false
		for _, c := range candidates {
			diff, ok := diffs[c]
			if !ok {
				if diff, err = d.diffFiles(ctx, []string{c}); err != nil {
					return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
				}
				diffs[c] = diff
			}
			if len(diff) == 0 {
				continue
			}
			_, line, ok := definition(diff, m)
			if !ok {
				continue
			}
			why := fmt.Sprintf("%s: between %s and %s, %s gains %s", describe(m), fix.From, fix.To, c, line)
			if i, ok := byFile[c]; ok {
				found[i].Missing = append(found[i].Missing, m)
				found[i].Explanation += "\n" + why
			} else {
				byFile[c] = len(found)
				found = append(found, Prerequisite{Missing: []Missing{m}, Diff: diff, Kind: KindDebian, Files: []string{c}, Explanation: why})
			}
			// A header declaring a new out-of-line function is half of it:
			// the body must come too, and the livepatch must carry it.
			if isPrototype(m, line) {
				p := &found[byFile[c]]
				body, bodyDiff, err := d.findBody(ctx, fix, m, c)
				if err != nil {
					return nil, nil, fmt.Errorf("find prerequisites of %s: %w", fix.CVE, err)
				}
				switch {
				case body == "":
					p.Explanation += fmt.Sprintf("\n%s is only declared there; its definition was not found in the window: the livepatch needs it too", m.Name)
				case !slices.Contains(p.Files, body):
					p.Diff = append(append([]byte(nil), p.Diff...), bodyDiff...)
					p.Files = append(p.Files, body)
					p.Explanation += fmt.Sprintf("\n%s is defined in %s, changed in the same window (a new function the livepatch must carry)", m.Name, body)
				}
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

// newFile is the creation of the file an #include names that the kernel's
// source lacks and the package has (a header an earlier stable commit
// added), looked for beside the includer and in the include directories;
// nil when neither has it so.
func (d *Debian) newFile(ctx context.Context, fix *Fix, m Missing) (*Prerequisite, error) {
	var tries []string
	if m.File != "" {
		tries = append(tries, path.Join(path.Dir(m.File), m.Name))
	}
	for _, dir := range []string{"include", "arch/x86/include", "include/uapi", "arch/x86/include/uapi"} {
		tries = append(tries, path.Join(dir, m.Name))
	}
	for _, rel := range tries {
		if checkRel(rel) != nil || slices.Contains(fix.Files, rel) {
			continue
		}
		if err := d.Later.Prefetch(ctx, rel); err != nil {
			return nil, err
		}
		if _, err := d.Later.Path(ctx, rel); err != nil {
			continue // not this one (or not in the package either)
		}
		if _, err := d.Base.Path(ctx, rel); err == nil {
			continue // the kernel has it: something else is wrong
		}
		diff, err := d.diffFiles(ctx, []string{rel})
		if err != nil {
			return nil, err
		}
		return &Prerequisite{Missing: []Missing{m}, Diff: diff, Kind: KindDebian, Files: []string{rel},
			Explanation: fmt.Sprintf("%s: between %s and %s, %s is added", describe(m), fix.From, fix.To, rel)}, nil
	}
	return nil, nil
}

// isPrototype reports whether a function's defining line only declares it.
func isPrototype(m Missing, line string) bool {
	if m.Kind != MissingFunction && m.Kind != MissingSymbol {
		return false
	}
	// A definition's header line ends in ")" (its brace on the next line)
	// or holds the brace; a prototype ends in ");".
	return !strings.Contains(line, "inline") && !strings.HasPrefix(line, "#") && !strings.Contains(line, "{") && !strings.HasSuffix(strings.TrimSpace(line), ")")
}

// findBody looks for the definition of a function a header declares: in
// the .c files named like the header (include/net/rtnetlink.h →
// net/core/rtnetlink.c), which is the kernel's habit. It needs an unpacked
// base tree to list; with another Files it finds nothing.
func (d *Debian) findBody(ctx context.Context, fix *Fix, m Missing, header string) (string, []byte, error) {
	dir, ok := d.Base.(DirFiles)
	if !ok {
		return "", nil, nil
	}
	stem := strings.TrimSuffix(path.Base(header), ".h")
	var cands []string
	for _, pat := range []string{"*/", "*/*/", "*/*/*/"} {
		ms, _ := filepath.Glob(filepath.Join(string(dir), pat+stem+".c"))
		for _, p := range ms {
			rel, err := filepath.Rel(string(dir), p)
			if err == nil && !slices.Contains(fix.Files, filepath.ToSlash(rel)) {
				cands = append(cands, filepath.ToSlash(rel))
			}
		}
	}
	if len(cands) == 0 {
		return "", nil, nil
	}
	if err := d.Later.Prefetch(ctx, cands...); err != nil {
		return "", nil, err
	}
	for _, c := range cands {
		diff, err := d.diffFiles(ctx, []string{c})
		if err != nil {
			return "", nil, err
		}
		if _, _, ok := definition(diff, m); ok {
			return c, diff, nil
		}
	}
	return "", nil, nil
}

// maxCandidates bounds the headers followed from a fix's files: enough
// for the kernel's include chains (a driver reaches net/rtnetlink.h
// through three others), not the whole include graph.
const maxCandidates = 800

// candidates are the files to look in, most likely first: those the
// compiler names, then the headers the fix's files include, directly and
// then through other headers (breadth first, as the base tree has them),
// each once and none of the fix's own.
func (d *Debian) candidates(ctx context.Context, fix *Fix, missing []Missing) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(rel string) {
		if checkRel(rel) == nil && !seen[rel] && !slices.Contains(fix.Files, rel) {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	for _, m := range missing {
		add(m.File)
		for _, inc := range m.Included {
			add(cleanPath(inc))
		}
	}
	// The fix's files are read as the package has them (the fix may add an
	// include); the headers as the kernel has them, which is what its
	// compile reads.
	queue := []string{}
	for _, rel := range fix.Files {
		src, err := readFile(ctx, d.Later, rel)
		if err != nil {
			return nil, err
		}
		queue = append(queue, d.includes(ctx, rel, src)...)
	}
	for len(queue) > 0 && len(out) < maxCandidates {
		rel := queue[0]
		queue = queue[1:]
		if seen[rel] || slices.Contains(fix.Files, rel) {
			continue
		}
		add(rel)
		src, err := readFile(ctx, d.Base, rel)
		if err != nil {
			return nil, err
		}
		queue = append(queue, d.includes(ctx, rel, src)...)
	}
	return out, nil
}

// includes resolves the #includes of file rel against the base tree (the
// x86 and generic include directories, and the file's own for "x.h").
func (d *Debian) includes(ctx context.Context, rel string, src []byte) []string {
	var out []string
	for _, m := range includeRE.FindAllSubmatch(src, -1) {
		name := string(m[2])
		var tries []string
		if m[1][0] == '"' {
			tries = append(tries, path.Join(path.Dir(rel), name))
		}
		tries = append(tries, "include/"+name, "arch/x86/include/"+name, "include/uapi/"+name, "arch/x86/include/uapi/"+name)
		for _, t := range tries {
			if checkRel(t) != nil {
				continue
			}
			if _, err := d.Base.Path(ctx, t); err == nil {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// readFile reads rel from f; a missing file reads as empty.
func readFile(ctx context.Context, f Files, rel string) ([]byte, error) {
	p, err := f.Path(ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}
