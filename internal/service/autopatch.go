package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// AutoPatchActor is the author of the patches the server makes itself.
const AutoPatchActor = "auto-patch"

// AutoPatchOptions shape the server's automatic patching.
type AutoPatchOptions struct {
	// Tier: after each sync, every CVE newly affecting a kernel at or
	// above this tier gets its raw fix fetched, built and vetted, and
	// waits for review.
	Tier string
	// FixesFrom are the fix sources: a debian: source applies to the
	// kernels built from that source package, a git: one to every kernel.
	FixesFrom []string
	// Limit bounds the patches one sync makes (highest priority first);
	// the rest are announced as skipped. Default 10.
	Limit    int
	Priority PriorityInputs
	Holder   string
	Poll     time.Duration
}

// sourceFor is the fix source that serves a kernel ("" when none does).
func sourceFor(k *kernel.Kernel, specs []string) string {
	for _, spec := range specs {
		if pkg, ok := strings.CutPrefix(spec, "debian:"); ok {
			name, _, _ := strings.Cut(pkg, "=")
			if k.Debian != nil && k.Debian.Source == name {
				return spec
			}
			continue
		}
		if strings.HasPrefix(spec, "git:") {
			return spec
		}
	}
	return ""
}

// RunAutoPatch makes deployable patches on its own: after each sync, for
// the CVEs newly affecting a kernel at or above the tier, it fetches the
// raw fix from the kernel's fix source and creates the patch (which a
// builder builds and vets). One replica does it at a time, from where the
// last one stopped. It returns when ctx ends.
func (s *Service) RunAutoPatch(ctx context.Context, o AutoPatchOptions) error {
	if o.Tier == "" || len(o.FixesFrom) == 0 {
		return invalidf("automatic patching needs a tier and at least one fix source")
	}
	if o.Limit <= 0 {
		o.Limit = 10
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	log := s.log.With("component", "auto-patch", "holder", o.Holder)
	first := func(ctx context.Context) { s.freshAffecting(ctx, st, "auto:", o.Tier, o.Priority) }
	return s.followUnderLease(ctx, st, leasedFollow{name: "auto-patch", holder: o.Holder, poll: o.Poll, log: log, first: first}, func(ctx context.Context, e event.Event) error {
		if e.Kind != event.SyncFinished {
			return nil
		}
		made := 0
		for _, a := range s.freshAffecting(ctx, st, "auto:", o.Tier, o.Priority) {
			spec := sourceFor(a.Kernel, o.FixesFrom)
			if spec == "" || a.Kernel.Debian == nil {
				continue
			}
			skip := func(why string) {
				s.publish(ctx, event.Event{At: time.Now(), Kind: "autopatch.skipped", Subject: a.CVE.ID, Actor: AutoPatchActor,
					Detail: fmt.Sprintf("%s on %s: %s", a.CVE.ID, a.Kernel.Name, why)})
			}
			if made >= o.Limit {
				skip(fmt.Sprintf("over this sync's limit of %d automatic patches", o.Limit))
				continue
			}
			if ps, err := st.Patches(ctx, store.PatchFilter{Kernel: a.Kernel.Name, CVE: a.CVE.ID}); err == nil && len(ps) > 0 {
				continue // someone made one already
			}
			d, err := s.CreatePatch(ctx, CreatePatchOptions{CVE: a.CVE.ID, Kernel: a.Kernel.Name, FixesFrom: spec, By: Actor{ID: AutoPatchActor}})
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				skip(err.Error())
				continue
			}
			made++
			log.Info("made a patch", "cve", a.CVE.ID, "kernel", a.Kernel.Name, "patch", d.ID, "tier", a.CVE.Priority.Tier)
		}
		return nil
	})
}
