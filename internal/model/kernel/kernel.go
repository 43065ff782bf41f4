// Package kernel describes the kernels TuxTape serves: what release and
// version each one is, the configuration it was built with, where its exact
// source comes from, and what it declares fixed beyond its version.
package kernel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// ErrInvalid wraps every validation error of a kernel record.
var ErrInvalid = errors.New("invalid kernel")

// Kernel is one kernel a fleet runs.
type Kernel struct {
	Name    string `json:"name"`
	Release string `json:"release"` // uname -r: 6.1.0-50-cloud-amd64
	// Version is the upstream version the source is based on: 6.1.176.
	Version string `json:"version"`
	Arch    string `json:"arch"` // x86_64
	// Config is the .config the kernel was built with.
	Config []byte `json:"-"`
	Source Source `json:"source"`
	// Debian names the packages of a Debian kernel; nil for others.
	Debian *Debian `json:"debian,omitempty"`
	// FixedCVEs and FixedCommits are fixes the kernel carries beyond its
	// upstream version (distribution backports): they override the version
	// answer.
	FixedCVEs    []string  `json:"fixed_cves,omitempty"`
	FixedCommits []string  `json:"fixed_commits,omitempty"`
	Added        time.Time `json:"added"`
	// Exercise is a shell script the VM vetting of this kernel's patches
	// runs (as `sh -s PHASE`: patched, then after) instead of the
	// default exercise; a patch's own exercise runs after it.
	Exercise string `json:"exercise,omitempty"`
}

// SourceKind says what Source.Spec is.
type SourceKind string

const (
	SourceTarball SourceKind = "tarball" // a local path or http(s) URL
	SourceDebian  SourceKind = "debian"  // a Debian source package, PACKAGE=VERSION
	SourceGit     SourceKind = "git"     // a git repository at Ref
)

// Source is where a kernel's exact source comes from.
type Source struct {
	Kind SourceKind `json:"kind"`
	Spec string     `json:"spec"`          // path/URL, PACKAGE=VERSION, or repository
	Ref  string     `json:"ref,omitempty"` // git only
	// Patches are applied in order on top of a git checkout, as
	// (name, contents) so the record does not depend on files that move.
	Patches []Patch `json:"patches,omitempty"`
}

// Patch is one patch of a git source.
type Patch struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Debian names a Debian kernel's packages, all of one version.
type Debian struct {
	Version string `json:"version"` // 6.1.176-1
	Image   string `json:"image"`   // linux-image-<release>: modules, config
	Headers string `json:"headers"` // linux-headers-<release>
	Debug   string `json:"debug"`   // linux-image-<release>-dbg: the real System.map
	Source  string `json:"source"`  // linux-source-6.1
}

// DebianFor names the packages of Debian's kernel release at version. A
// release Debian's scheme does not split keeps its first two numbers as
// the source series; Validate refuses it later.
func DebianFor(release, version string) *Debian {
	r, err := ParseDebianRelease(release)
	if err != nil {
		r = DebianRelease{Release: release, Base: release}
		if parts := strings.SplitN(release, ".", 3); len(parts) >= 2 {
			r.Base = parts[0] + "." + parts[1]
		}
	}
	return &Debian{
		Version: version,
		Image:   r.ImagePackage(),
		Headers: r.HeadersPackage(),
		Debug:   r.DebugPackage(),
		Source:  r.SourcePackage(),
	}
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	releaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]+[A-Za-z0-9._+~-]*$`)
	debverRE  = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)
	debpkgRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	cveRE     = regexp.MustCompile(`\bCVE-[0-9]{4}-[0-9]{4,}\b`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{12,40}$`)
)

// ParseSource parses a source spec: "debian:PACKAGE=VERSION", a git
// repository ("git+https://…", "…​.git", or a local repository directory
// when ref is given), or a tarball path or URL.
func ParseSource(spec, ref string) (Source, error) {
	switch {
	case spec == "":
		return Source{}, fmt.Errorf("%w: empty source: give a tarball, debian:PACKAGE=VERSION or a git repository", ErrInvalid)
	case strings.HasPrefix(spec, "debian:"):
		pkg, ver, ok := strings.Cut(strings.TrimPrefix(spec, "debian:"), "=")
		if !ok || !debpkgRE.MatchString(pkg) || !debverRE.MatchString(ver) {
			return Source{}, fmt.Errorf("%w: source %q: want debian:PACKAGE=VERSION, e.g. debian:linux-source-6.1=6.1.176-1", ErrInvalid, spec)
		}
		if ref != "" {
			return Source{}, fmt.Errorf("%w: --ref applies to git sources, not %q", ErrInvalid, spec)
		}
		return Source{Kind: SourceDebian, Spec: pkg + "=" + ver}, nil
	case ref != "" || strings.HasPrefix(spec, "git+") || strings.HasSuffix(spec, ".git"):
		if ref == "" {
			return Source{}, fmt.Errorf("%w: git source %q needs --ref (a tag, branch or commit)", ErrInvalid, spec)
		}
		return Source{Kind: SourceGit, Spec: strings.TrimPrefix(spec, "git+"), Ref: ref}, nil
	default:
		if u, err := url.Parse(spec); err == nil && u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file" {
			return Source{}, fmt.Errorf("%w: source %q: unsupported URL scheme %q", ErrInvalid, spec, u.Scheme)
		}
		return Source{Kind: SourceTarball, Spec: spec}, nil
	}
}

// DebianPackage splits a Debian source spec into package and version.
func (s Source) DebianPackage() (pkg, version string, ok bool) {
	if s.Kind != SourceDebian {
		return "", "", false
	}
	return strings.Cut(s.Spec, "=")
}

// String is the spec as a user writes it.
func (s Source) String() string {
	switch s.Kind {
	case SourceDebian:
		return "debian:" + s.Spec
	case SourceGit:
		return s.Spec + "@" + s.Ref
	}
	return s.Spec
}

// Validate checks a record before it is stored.
func (k *Kernel) Validate() error {
	if !nameRE.MatchString(k.Name) {
		return fmt.Errorf("%w: name %q: use letters, digits, '.', '_', '+' or '-' (at most 128)", ErrInvalid, k.Name)
	}
	if !releaseRE.MatchString(k.Release) {
		return fmt.Errorf("%w: release %q does not look like `uname -r` (e.g. 6.1.0-50-cloud-amd64)", ErrInvalid, k.Release)
	}
	v, err := vulns.ParseVersion(k.Version)
	if err != nil {
		return fmt.Errorf("%w: version: %w (want the upstream version, e.g. 6.1.176)", ErrInvalid, err)
	}
	if v.IsRC() {
		return fmt.Errorf("%w: version %q: release candidates are not supported", ErrInvalid, k.Version)
	}
	if len(k.Config) == 0 {
		return fmt.Errorf("%w: %s has no .config", ErrInvalid, k.Name)
	}
	if !bytes.Contains(k.Config, []byte("CONFIG_")) {
		return fmt.Errorf("%w: the config of %s has no CONFIG_ lines: is it a kernel .config?", ErrInvalid, k.Name)
	}
	if k.Source.Kind == "" {
		return fmt.Errorf("%w: %s has no source", ErrInvalid, k.Name)
	}
	for _, id := range k.FixedCVEs {
		if !vulns.IsCVEID(id) {
			return fmt.Errorf("%w: fixed CVE %q", ErrInvalid, id)
		}
	}
	for _, c := range k.FixedCommits {
		if !commitRE.MatchString(c) {
			return fmt.Errorf("%w: fixed commit %q: want 12 to 40 lowercase hex digits", ErrInvalid, c)
		}
	}
	return nil
}

// ParsedVersion is Version parsed; Validate has checked it.
func (k *Kernel) ParsedVersion() vulns.Version {
	v, _ := vulns.ParseVersion(k.Version)
	return v
}

// ReadFixes reads a list of fixes a kernel carries: every CVE ID anywhere
// in it (so a distribution changelog works as it is, gzip-compressed or
// not), and every line that is only a commit ID (12–40 hex digits).
func ReadFixes(r io.Reader) (cves, commits []string, err error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("read fixes: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		cves = append(cves, cveRE.FindAllString(line, -1)...)
		if t := strings.ToLower(strings.TrimSpace(line)); commitRE.MatchString(t) {
			commits = append(commits, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read fixes: %w", err)
	}
	slices.Sort(cves)
	slices.Sort(commits)
	return slices.Compact(cves), slices.Compact(commits), nil
}
