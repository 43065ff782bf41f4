package cli

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
	"strconv"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// errHalted is a promotion the fleet's health stops (exit 1).
var errHalted = errors.New("promotion halted")

// publishPatchSet publishes a ready patch set's module to the archive.
func publishPatchSet(ctx context.Context, g *Globals, dir string, o ArchivePublishOptions) (*feed.Release, error) {
	kernel, v, ok := strings.Cut(o.FromPatchSet, ":")
	version, err := strconv.Atoi(v)
	if !ok || kernel == "" || err != nil || version < 1 {
		return nil, usagef("--from-patchset %q: want KERNEL:VERSION, e.g. cloud:3 (see tuxtape patchset list)", o.FromPatchSet)
	}
	sets, err := g.q.PatchSets(ctx, kernel)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(sets, func(s patch.Set) bool { return s.Version == version })
	if i < 0 {
		return nil, fmt.Errorf("kernel %s has no patch set v%d (see tuxtape patchset list %s): %w", kernel, version, kernel, store.ErrNotFound)
	}
	set := sets[i]
	if set.State != patch.SetReady {
		return nil, usagef("patch set %s v%d is %s, not ready: only a set built and vetted from approved patches is published", kernel, version, set.State)
	}
	k, err := g.q.Kernel(ctx, kernel)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tuxtape-publish-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ko := filepath.Join(tmp, set.Module+".ko")
	sum, err := fetchArtifact(ctx, g, set.Job, "module.ko", ko)
	if err != nil {
		return nil, err
	}
	if sum != set.SHA256 {
		return nil, fmt.Errorf("patch set %s v%d: the module fetched has SHA-256 %s, the set records %s: not published", kernel, version, sum, set.SHA256)
	}
	vet, err := artifactSum(ctx, g, set.Job, "vet-report.json")
	if err != nil {
		return nil, err
	}
	return g.svc.ArchivePublish(ctx, service.ArchivePublishOptions{Dir: dir, Module: ko, Kernel: k.Release, PatchSet: patchSetName(kernel),
		CVEs: set.CVEs, Ring: o.Ring, Replaces: o.Replaces, VetReport: vet})
}

// patchSetName is an archive patch-set name for a kernel: no dashes.
func patchSetName(kernel string) string {
	return "tt_" + strings.NewReplacer("-", "_", ".", "_", "+", "_").Replace(kernel)
}

// fetchArtifact writes a job's artifact to path and returns its SHA-256.
func fetchArtifact(ctx context.Context, g *Globals, jobID, name, path string) (string, error) {
	rc, _, err := g.q.OpenArtifact(ctx, jobID, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, service.MaxArtifact+1)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// artifactSum is a job's artifact's recorded SHA-256 ("" without one).
func artifactSum(ctx context.Context, g *Globals, jobID, name string) (string, error) {
	d, err := g.q.Job(ctx, jobID)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(d.Artifacts, func(a job.Artifact) bool { return a.Name == name })
	if i < 0 {
		return "", nil
	}
	return d.Artifacts[i].SHA256, nil
}

// promotionOpen refuses to promote a version whose livepatch failed in a
// ring it is in, by the fleet's reports, or (with soak) that has not run
// that long on machines of its last ring.
func promotionOpen(ctx context.Context, g *Globals, v service.ArchiveVersion, soak time.Duration) error {
	st, err := g.svc.ArchiveStatus(ctx, v.Dir)
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
	hs, err := g.q.FleetHealth(ctx, rel.Module)
	if err != nil {
		return fmt.Errorf("promote: the fleet's health of %s: %w", rel.Module, err)
	}
	for _, h := range hs {
		if h.Halted && slices.Contains(rel.Rings, h.Ring) {
			return fmt.Errorf("version %d (%s) of %s: %d machine(s) of ring %s reported it failing (tuxtape fleet health --patch %s): %w",
				v.Version, rel.Module, v.Kernel, h.Failed, h.Ring, rel.Module, errHalted)
		}
	}
	if soak <= 0 || len(rel.Rings) == 0 {
		return nil
	}
	// The time gate: the version has run for soak on machines of the
	// last ring it is in.
	ring := rel.Rings[len(rel.Rings)-1]
	i := slices.IndexFunc(hs, func(h service.RingHealth) bool { return h.Ring == ring })
	if i < 0 || hs[i].FirstApplied.IsZero() {
		return fmt.Errorf("version %d (%s) of %s: no machine of ring %s has applied it yet; --min-soak %v: %w", v.Version, rel.Module, v.Kernel, ring, soak, errHalted)
	}
	if ran := time.Since(hs[i].FirstApplied); ran < soak {
		return fmt.Errorf("version %d (%s) of %s has run in ring %s for %v, less than --min-soak %v: %w", v.Version, rel.Module, v.Kernel, ring,
			ran.Round(time.Second), soak, errHalted)
	}
	return nil
}
