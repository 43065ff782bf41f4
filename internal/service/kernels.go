package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/kbuild"
	"github.com/tuxtape/tuxtape/internal/build/kernelsrc"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// NamedData is a file's content and the name it is known by.
type NamedData struct {
	Name string
	Data []byte
}

// AddKernelOptions describe a kernel to add.
type AddKernelOptions struct {
	Name, Release, Version, Arch string
	Source, Ref                  string // as kernel.ParseSource takes them
	Config                       []byte // its .config; Debian kernels default to the image's
	Patches                      []kernel.Patch
	// Fixed are lists of fixes the kernel carries beyond its version (CVE
	// IDs anywhere, lines that are commit IDs).
	Fixed []NamedData
	// NoChangelog: a Debian kernel does not take the CVEs its image's
	// changelog names as fixed.
	NoChangelog bool
	// Exercise is the vetting script of the kernel's patches
	// (kernel.Kernel.Exercise).
	Exercise string
	// Remote: the request came over the API, so a source that is a path
	// would name a file on the server's machine: refused.
	Remote bool
	By     Actor // for the audit log
}

// AddKernel records a kernel. A Debian kernel's config (when not given)
// and the CVEs its changelog names come from its image package.
func (s *Service) AddKernel(ctx context.Context, o AddKernelOptions) (*kernel.Kernel, error) {
	if o.Release == "" {
		return nil, invalidf("kernel add: --release is required (the kernel's uname -r)")
	}
	src, err := kernel.ParseSource(o.Source, o.Ref)
	if err != nil {
		return nil, &InvalidError{err.Error()}
	}
	arch, err := kernelArch(o.Arch, o.Release)
	if err != nil {
		return nil, err
	}
	exercise, err := checkExercise(o.Exercise)
	if err != nil {
		return nil, err
	}
	k := &kernel.Kernel{Name: o.Name, Release: o.Release, Version: o.Version, Arch: arch, Source: src, Config: o.Config, Exercise: exercise}
	if len(o.Patches) > 0 {
		if src.Kind != kernel.SourceGit {
			return nil, invalidf("--patches applies to git sources")
		}
		k.Source.Patches = o.Patches
	}
	if pkg, ver, ok := src.DebianPackage(); ok {
		k.Debian = kernel.DebianFor(o.Release, ver)
		if k.Debian.Source != pkg {
			return nil, invalidf("source package %s does not match release %s (want %s)", pkg, o.Release, k.Debian.Source)
		}
		if k.Version == "" {
			k.Version, _, _ = strings.Cut(ver, "-")
		}
	}
	if k.Version == "" {
		return nil, invalidf("kernel add: --version is required for a non-Debian source (e.g. 6.1.176)")
	}
	if k.Config == nil && k.Debian == nil {
		return nil, invalidf("kernel add: --kconfig is required for a non-Debian source (the kernel's .config)")
	}
	if k.Debian != nil && (k.Config == nil || !o.NoChangelog) {
		if err := s.harvestDebian(ctx, k, !o.NoChangelog); err != nil {
			return nil, err
		}
	}
	cfg, err := kconfig.ParseConfig(bytes.NewReader(k.Config))
	if err != nil {
		return nil, invalidf("kernel %s: %v", o.Name, err)
	}
	archs, err := kernel.ConfigArch(cfg.Arch, cfg.Get)
	if err != nil {
		return nil, invalidf("kernel %s: %v", o.Name, err)
	}
	if !slices.Contains(archs, k.Arch) {
		return nil, invalidf("kernel %s: the config is for %s, not %s (the kernel's --arch, or its Debian release's): give the config this kernel was built with", o.Name, strings.Join(archs, " or "), k.Arch)
	}
	for _, f := range o.Fixed {
		cves, commits, err := kernel.ReadFixes(bytes.NewReader(f.Data))
		if err != nil {
			return nil, fmt.Errorf("--fixed: %s: %w", f.Name, err)
		}
		k.FixedCVEs = append(k.FixedCVEs, cves...)
		k.FixedCommits = append(k.FixedCommits, commits...)
	}
	slices.Sort(k.FixedCVEs)
	k.FixedCVEs = slices.Compact(k.FixedCVEs)
	slices.Sort(k.FixedCommits)
	k.FixedCommits = slices.Compact(k.FixedCommits)
	if err := k.Validate(); err != nil {
		return nil, &InvalidError{err.Error()}
	}
	if o.Remote && localPath(k.Source) {
		return nil, invalidf("source %s is a path, which would name a file on the server's machine: over --server give debian:PACKAGE=VERSION, an http(s) tarball or a git URL", k.Source.Spec)
	}
	if err := checkLocalSource(k.Source); err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.AddKernel(ctx, k); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, invalidf("%v: pick another name, or `tuxtape kernel rm %s` first", err, o.Name)
		}
		return nil, err
	}
	detail := k.Release + " from " + k.Source.String()
	s.audit(ctx, o.By, "kernel.add", k.Name, detail)
	s.publish(ctx, event.Event{At: time.Now(), Kind: event.KernelAdded, Subject: k.Name, Actor: actorID(o.By), Detail: detail})
	return k, nil
}

// kernelArch is the architecture of a kernel to add: --arch (any name
// NormalizeArch knows), else the one its Debian release's flavour names,
// else x86_64. A --arch the release contradicts is refused.
func kernelArch(flag, release string) (string, error) {
	var fromRelease string
	if r, err := kernel.ParseDebianRelease(release); err == nil {
		fromRelease = r.Arch()
	}
	if flag == "" {
		if fromRelease != "" {
			return fromRelease, nil
		}
		return kernel.ArchX86_64, nil
	}
	arch, ok := kernel.NormalizeArch(flag)
	if !ok {
		return "", invalidf("--arch %q: want an architecture as uname -m prints it: x86_64, arm64, i386…", flag)
	}
	if fromRelease != "" && fromRelease != arch {
		return "", invalidf("--arch %s, but release %s is a Debian %s kernel", flag, release, fromRelease)
	}
	return arch, nil
}

// checkLocalSource refuses a local tarball source that cannot be one: a
// FIFO or device, or a directory that is neither a kernel source tree nor
// (without --ref) a git repository. Found now, not at the first build. A
// path that does not exist (yet) is accepted: the record may be made
// before the tarball is put in place.
// localPath reports whether a source names a file or directory rather
// than a package or a URL.
func localPath(src kernel.Source) bool {
	switch src.Kind {
	case kernel.SourceTarball:
		return !strings.HasPrefix(src.Spec, "http://") && !strings.HasPrefix(src.Spec, "https://")
	case kernel.SourceGit:
		return !strings.Contains(src.Spec, "://") && !strings.HasPrefix(src.Spec, "git@")
	}
	return false
}

func checkLocalSource(src kernel.Source) error {
	if src.Kind != kernel.SourceTarball || strings.HasPrefix(src.Spec, "http://") || strings.HasPrefix(src.Spec, "https://") {
		return nil
	}
	const kinds = "a source is a tarball (linux-6.1.176.tar.xz), an http(s) URL of one, debian:PACKAGE=VERSION, a git repository with --ref, or a kernel source tree"
	p := strings.TrimPrefix(src.Spec, "file://")
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--source: %w", err)
	case st.Mode().IsRegular():
		return nil
	case !st.IsDir():
		return invalidf("--source %s is %s, not a tarball (%s)", p, atomicfile.Kind(st.Mode()), kinds)
	}
	if _, err := os.Stat(filepath.Join(p, ".git")); err == nil {
		return invalidf("--source %s is a git repository: give the tag, branch or commit to build with --ref", p)
	}
	for _, f := range []string{"Makefile", "Kbuild"} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			return invalidf("--source %s is a directory without a top-level %s, not a kernel source tree (%s)", p, f, kinds)
		}
	}
	return nil
}

// harvestDebian fills in a Debian kernel's config (when it has none) and,
// with changelog, the CVEs its image package's changelog names: Debian's
// changelog names the CVEs each upload fixes, backports included.
func (s *Service) harvestDebian(ctx context.Context, k *kernel.Kernel, changelog bool) error {
	dk, err := debpkg.NewKernel(debpkg.Options{CacheDir: s.debsDir(), Logger: s.log}, k.Release, k.Debian.Version)
	if err != nil {
		return &InvalidError{err.Error()}
	}
	s.notify("fetching %s=%s for its config and changelog…", k.Debian.Image, k.Debian.Version)
	img, err := dk.Image(ctx)
	if err != nil {
		return err
	}
	if k.Config == nil {
		if k.Config, err = ReadRegularFile("the image's config", img.Config, MaxKernelConfig); err != nil {
			return err
		}
	}
	if !changelog {
		return nil
	}
	cl := filepath.Join(img.Root, "usr", "share", "doc", k.Debian.Image, "changelog.gz")
	f, err := os.Open(cl)
	if err != nil {
		return fmt.Errorf("kernel %s: Debian changelog: %w (use --no-changelog to skip it)", k.Name, err)
	}
	defer f.Close()
	cves, _, err := kernel.ReadFixes(f)
	if err != nil {
		return fmt.Errorf("kernel %s: Debian changelog: %s: %w (use --no-changelog to skip it)", k.Name, cl, err)
	}
	k.FixedCVEs = append(k.FixedCVEs, cves...)
	return nil
}

// KernelView is a kernel record as front ends show it.
type KernelView struct {
	*kernel.Kernel
	ConfigSHA256 string               `json:"config_sha256"`
	Profiles     map[string]time.Time `json:"profiles"`
}

func kernelView(ctx context.Context, st store.Store, k *kernel.Kernel) (KernelView, error) {
	sum := sha256.Sum256(k.Config)
	kinds, err := st.ProfileKinds(ctx, k.Name)
	if err != nil {
		return KernelView{}, err
	}
	v := KernelView{Kernel: k, ConfigSHA256: hex.EncodeToString(sum[:]), Profiles: map[string]time.Time{}}
	for kind, t := range kinds {
		v.Profiles[string(kind)] = t
	}
	return v, nil
}

// Kernels lists the kernels.
func (s *Service) Kernels(ctx context.Context) ([]KernelView, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	ks, err := st.Kernels(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]KernelView, 0, len(ks))
	for _, k := range ks {
		v, err := kernelView(ctx, st, k)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

// Kernel returns one kernel.
func (s *Service) Kernel(ctx context.Context, name string) (KernelView, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return KernelView{}, err
	}
	k, err := st.Kernel(ctx, name)
	if err != nil {
		return KernelView{}, notFound("kernel", err)
	}
	return kernelView(ctx, st, k)
}

// RemoveKernel removes a kernel and its profiles.
func (s *Service) RemoveKernel(ctx context.Context, name string, by Actor) error {
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	if err := st.RemoveKernel(ctx, name); err != nil {
		return notFound("kernel", err)
	}
	s.audit(ctx, by, "kernel.rm", name, "")
	s.publish(ctx, event.Event{At: time.Now(), Kind: event.KernelRemoved, Subject: name, Actor: actorID(by)})
	return nil
}

// BuildKernelOptions shape a full kernel build.
type BuildKernelOptions struct {
	Jobs int
	// From reads the profile of a build that already finished there.
	From string
	// Output hears make's output; Estimate, when set, is told about how
	// many objects the build will compile (from the static profile).
	Output   io.Writer
	Estimate func(objects int)
}

// BuildDir is where a kernel's full build is kept.
func (s *Service) BuildDir(name string) string { return filepath.Join(s.cfg.CacheDir, "builds", name) }

// BuildKernel runs a kernel's full build (or reads a finished one) and
// stores its real build profile.
func (s *Service) BuildKernel(ctx context.Context, name string, o BuildKernelOptions) (*profile.Profile, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	k, err := st.Kernel(ctx, name)
	if err != nil {
		return nil, notFound("kernel", err)
	}
	var p *profile.Profile
	if o.From != "" {
		if p, err = kbuild.ReadBuild(ctx, o.From); err != nil {
			return nil, err
		}
	} else {
		if o.Estimate != nil {
			// The static profile, when there is one, says about how many
			// objects the build compiles.
			if sp, _, err := st.Profile(ctx, name, profile.KindStatic); err == nil {
				o.Estimate(len(sp.Units))
			}
		}
		src := kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}
		if p, err = src.Build(ctx, k, kernelsrc.BuildOptions{Dir: s.BuildDir(name), Jobs: o.Jobs, Output: o.Output}); err != nil {
			return nil, err
		}
	}
	if err := st.PutProfile(ctx, name, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ProfileChoice says which build profile a use case takes.
type ProfileChoice string

// The choices.
const (
	ProfileAuto   ProfileChoice = ""       // real if stored, else static
	ProfileReal   ProfileChoice = "real"   // only the real one
	ProfileStatic ProfileChoice = "static" // only the static one
	ProfileNone   ProfileChoice = "none"   // none: version checks only
)

// Valid checks c.
func (c ProfileChoice) Valid() error {
	switch c {
	case ProfileAuto, ProfileReal, ProfileStatic, ProfileNone:
		return nil
	}
	return invalidf("--profile %q: want real, static or none", string(c))
}

// ProfileOptions choose a kernel's profile.
type ProfileOptions struct {
	Choice ProfileChoice
	// Refresh recomputes the static profile even if one is stored.
	Refresh bool
}

// Profile returns a kernel's build profile as o chooses (nil for
// ProfileNone). The static one is computed and stored when missing.
func (s *Service) Profile(ctx context.Context, name string, o ProfileOptions) (*profile.Profile, error) {
	if err := o.Choice.Valid(); err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	k, err := st.Kernel(ctx, name)
	if err != nil {
		return nil, notFound("kernel", err)
	}
	return s.profile(ctx, st, k, o)
}

func (s *Service) profile(ctx context.Context, st store.Store, k *kernel.Kernel, o ProfileOptions) (*profile.Profile, error) {
	switch o.Choice {
	case ProfileNone:
		return nil, nil
	case ProfileReal:
		return s.storedOrStatic(ctx, st, k, profile.KindReal, false)
	case ProfileStatic:
		return s.storedOrStatic(ctx, st, k, profile.KindStatic, o.Refresh)
	}
	p, _, err := st.Profile(ctx, k.Name, profile.KindReal)
	if errors.Is(err, store.ErrNotFound) {
		return s.storedOrStatic(ctx, st, k, profile.KindStatic, o.Refresh)
	}
	return p, err
}

// storedOrStatic returns a kernel's stored profile of kind; a static one
// is computed and stored when missing (or when refresh is set).
func (s *Service) storedOrStatic(ctx context.Context, st store.Store, k *kernel.Kernel, kind profile.Kind, refresh bool) (*profile.Profile, error) {
	if !refresh || kind == profile.KindReal {
		p, _, err := st.Profile(ctx, k.Name, kind)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return p, err
		}
		if kind == profile.KindReal {
			return nil, fmt.Errorf("%w: run `tuxtape kernel build %s` (a full build), or use the static profile", err, k.Name)
		}
	}
	s.notify("evaluating the Kbuild Makefiles of %s…", k.Name)
	p, err := kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}.StaticProfile(ctx, k)
	if err != nil {
		return nil, err
	}
	if err := st.PutProfile(ctx, k.Name, p); err != nil {
		return nil, err
	}
	return p, nil
}
