package klp

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
)

// DebianKernel sets up a Debian kernel as a patch target: its image
// (modules, config), -dbg (the real symbol table), headers (installed with
// apt: their Makefile names the -common tree by absolute path) and exact
// source, prepared under treesDir and reused from there.
func DebianKernel(ctx context.Context, opts debpkg.Options, release, version, treesDir string, log *slog.Logger) (*Kernel, error) {
	k, err := debpkg.NewKernel(opts, release, version)
	if err != nil {
		return nil, err
	}
	img, err := k.Image(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel image: %w", err)
	}
	dbg, err := k.Debug(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel symbols: %w", err)
	}
	headers, err := k.InstallHeaders(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel headers: %w", err)
	}
	tarball, err := k.SourceTarball(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel source: %w", err)
	}
	tree, err := ktree.Prepare(ctx, ktree.PrepareOptions{Tarball: tarball, Config: img.Config, Dir: filepath.Join(treesDir, release+"_"+version), Log: log})
	if err != nil {
		return nil, err
	}
	exports, err := ReadSymvers(filepath.Join(headers, "Module.symvers"))
	if err != nil {
		return nil, err
	}
	return &Kernel{Tree: tree, HeadersDir: headers, Vmlinux: dbg.Vmlinux, ModulesDir: img.ModulesDir, Exports: exports, Vmlinuz: img.Vmlinuz}, nil
}
