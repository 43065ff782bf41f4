package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/service"
)

// publishPatchSet publishes --from-patchset KERNEL:VERSION, from the
// database or the server.
func publishPatchSet(ctx context.Context, g *Globals, dir string, o ArchivePublishOptions) (*feed.Release, error) {
	kernel, v, ok := strings.Cut(o.FromPatchSet, ":")
	version, err := strconv.Atoi(v)
	if !ok || kernel == "" || err != nil || version < 1 {
		return nil, usagef("--from-patchset %q: want KERNEL:VERSION, e.g. cloud:3 (see tuxtape patchset list)", o.FromPatchSet)
	}
	return g.svc.ArchivePublishPatchSet(ctx, g.q, service.PublishPatchSetOptions{Dir: dir, Kernel: kernel, Version: version, Ring: o.Ring, Replaces: o.Replaces})
}
