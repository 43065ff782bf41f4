package kernelsrc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tuxtape/tuxtape/internal/build/kbuild"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// StaticProfile evaluates k's Kbuild Makefiles against its config (the
// source is unpacked into the cache the first time).
func (s Sources) StaticProfile(ctx context.Context, k *kernel.Kernel) (*profile.Profile, error) {
	cfg, err := kconfig.ParseConfig(bytes.NewReader(k.Config))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	dir, err := s.Tree(ctx, k)
	if err != nil {
		return nil, err
	}
	// With the include graph: header fixes then work without a full build.
	return kbuild.Static(ctx, dir, cfg, kbuild.StaticOptions{Headers: true})
}

// BuildOptions shape a full kernel build.
type BuildOptions struct {
	Dir    string    // the build tree, kept for later builds and patch work
	Jobs   int       // parallel make jobs; 0: one per CPU
	Output io.Writer // make's output (nil: discarded)
}

// Build runs k's full build (source unpacked into o.Dir, its config,
// olddefconfig, then vmlinux and modules) and returns the real build
// profile read from kbuild's records. A builder worker calls it as the CLI
// does; a tree already built is rebuilt incrementally.
func (s Sources) Build(ctx context.Context, k *kernel.Kernel, o BuildOptions) (*profile.Profile, error) {
	archive, err := s.Archive(ctx, k)
	if err != nil {
		return nil, err
	}
	cfg, err := os.CreateTemp("", "tuxtape-config-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(cfg.Name())
	if _, err := cfg.Write(k.Config); err != nil {
		cfg.Close()
		return nil, err
	}
	if err := cfg.Close(); err != nil {
		return nil, err
	}
	tree, err := ktree.Prepare(ctx, ktree.PrepareOptions{Tarball: archive, Config: cfg.Name(), Dir: o.Dir, Log: s.Log, AnyConfig: true})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	if err := tree.Build(ctx, o.Jobs, out); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	return kbuild.ReadBuild(ctx, tree.Dir)
}
