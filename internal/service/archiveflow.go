package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// ErrHalted is a promotion the fleet's health (or a time gate) stops.
var ErrHalted = errors.New("promotion halted")

// PatchSetSource is where a patch set to publish comes from: this
// installation's database (*Service) or a server (api.Remote).
type PatchSetSource interface {
	PatchSets(ctx context.Context, kernel string) ([]patch.Set, error)
	Kernel(ctx context.Context, name string) (KernelView, error)
	Job(ctx context.Context, id string) (JobDetail, error)
	OpenArtifact(ctx context.Context, id, name string) (io.ReadCloser, job.Artifact, error)
}

// PublishPatchSetOptions name a patch set to publish to an archive.
type PublishPatchSetOptions struct {
	Dir      string
	Kernel   string
	Version  int
	Ring     string
	Replaces int64
}

// ArchivePublishPatchSet publishes a ready patch set (built and vetted
// from approved patches) to the archive: its module, fetched from src and
// checked against the SHA-256 the set records, for its kernel's release,
// with its CVEs and vetting report.
func (s *Service) ArchivePublishPatchSet(ctx context.Context, src PatchSetSource, o PublishPatchSetOptions) (*feed.Release, error) {
	sets, err := src.PatchSets(ctx, o.Kernel)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(sets, func(s patch.Set) bool { return s.Version == o.Version })
	if i < 0 {
		return nil, fmt.Errorf("kernel %s has no patch set v%d (see tuxtape patchset list %s): %w", o.Kernel, o.Version, o.Kernel, store.ErrNotFound)
	}
	set := sets[i]
	if set.State != patch.SetReady {
		return nil, invalidf("patch set %s v%d is %s, not ready: only a set built and vetted from approved patches is published", o.Kernel, o.Version, set.State)
	}
	k, err := src.Kernel(ctx, o.Kernel)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tuxtape-publish-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ko := filepath.Join(tmp, set.Module+".ko")
	sum, err := fetchArtifact(ctx, src, set.Job, "module.ko", ko)
	if err != nil {
		return nil, err
	}
	if sum != set.SHA256 {
		return nil, fmt.Errorf("patch set %s v%d: the module fetched has SHA-256 %s, the set records %s: not published", o.Kernel, o.Version, sum, set.SHA256)
	}
	d, err := src.Job(ctx, set.Job)
	if err != nil {
		return nil, err
	}
	vet := ""
	if i := slices.IndexFunc(d.Artifacts, func(a job.Artifact) bool { return a.Name == "vet-report.json" }); i >= 0 {
		vet = d.Artifacts[i].SHA256
	}
	return s.ArchivePublish(ctx, ArchivePublishOptions{Dir: o.Dir, Module: ko, Kernel: k.Release, PatchSet: patchSetName(o.Kernel),
		CVEs: set.CVEs, Ring: o.Ring, Replaces: o.Replaces, VetReport: vet})
}

// patchSetName is an archive patch-set name for a kernel: no dashes.
func patchSetName(kernel string) string {
	return "tt_" + strings.NewReplacer("-", "_", ".", "_", "+", "_").Replace(kernel)
}

// fetchArtifact writes a job's artifact to path and returns its SHA-256.
func fetchArtifact(ctx context.Context, src PatchSetSource, jobID, name, path string) (string, error) {
	rc, _, err := src.OpenArtifact(ctx, jobID, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, MaxArtifact+1)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HealthSource says how a livepatch fares in the fleet: this
// installation's database (*Service) or a server (api.Remote).
type HealthSource interface {
	FleetHealth(ctx context.Context, patch string) ([]RingHealth, error)
}

// ArchivePromoteGated promotes a version unless the fleet halts it: a
// ring it is in reported it failing, or (soak > 0) it has not run that
// long on machines of the last ring it is in (from the first applied
// report). Refusals wrap ErrHalted.
func (s *Service) ArchivePromoteGated(ctx context.Context, health HealthSource, o ArchiveVersion, soak time.Duration) (*feed.Release, error) {
	if err := s.promotionOpen(ctx, health, o, soak); err != nil {
		return nil, err
	}
	return s.ArchivePromote(ctx, o)
}

func (s *Service) promotionOpen(ctx context.Context, health HealthSource, v ArchiveVersion, soak time.Duration) error {
	st, err := s.ArchiveStatus(ctx, v.Dir)
	if err != nil {
		return err
	}
	var rel *feed.Release
	for _, k := range st.Kernels {
		if k.Kernel != v.Kernel {
			continue
		}
		for i := range k.Versions {
			if k.Versions[i].Version == v.Version {
				rel = &k.Versions[i]
			}
		}
	}
	if rel == nil {
		return nil // the archive says what is wrong
	}
	hs, err := health.FleetHealth(ctx, rel.Module)
	if err != nil {
		return fmt.Errorf("promote: the fleet's health of %s: %w", rel.Module, err)
	}
	for _, h := range hs {
		if h.Halted && slices.Contains(rel.Rings, h.Ring) {
			return fmt.Errorf("version %d (%s) of %s: %d machine(s) of ring %s reported it failing (tuxtape fleet health --patch %s): %w",
				v.Version, rel.Module, v.Kernel, h.Failed, h.Ring, rel.Module, ErrHalted)
		}
	}
	if soak <= 0 || len(rel.Rings) == 0 {
		return nil
	}
	ring := rel.Rings[len(rel.Rings)-1]
	i := slices.IndexFunc(hs, func(h RingHealth) bool { return h.Ring == ring })
	if i < 0 || hs[i].FirstApplied.IsZero() {
		return fmt.Errorf("version %d (%s) of %s: no machine of ring %s has applied it yet; --min-soak %v: %w", v.Version, rel.Module, v.Kernel, ring, soak, ErrHalted)
	}
	if ran := time.Since(hs[i].FirstApplied); ran < soak {
		return fmt.Errorf("version %d (%s) of %s has run in ring %s for %v, less than --min-soak %v: %w", v.Version, rel.Module, v.Kernel, ring,
			ran.Round(time.Second), soak, ErrHalted)
	}
	return nil
}
