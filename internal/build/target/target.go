// Package target sets up a kernel as a patch target for the generator:
// its packages fetched, its exact source prepared, its symbols and exports
// read. The generator (klp) takes what this makes and fetches nothing.
package target

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
)

// Kernel is a patch target: what the generator needs, and the bootable
// image the VM check boots.
type Kernel struct {
	*klp.Kernel
	Vmlinuz string // the bootable image ("" when not known)
}

// VM is what the VM check needs of k.
func (k *Kernel) VM() vmcheck.Target {
	return vmcheck.Target{Vmlinuz: k.Vmlinuz, ModulesDir: k.ModulesDir}
}

// Debian sets up a Debian kernel as a patch target: its image
// (modules, config), -dbg (the real symbol table), headers (installed with
// apt: their Makefile names the -common tree by absolute path) and exact
// source, prepared under treesDir and reused from there.
func Debian(ctx context.Context, opts debpkg.Options, release, version, treesDir string, log *slog.Logger) (*Kernel, error) {
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
	exports, ns, err := klp.ReadSymvers(filepath.Join(headers, "Module.symvers"))
	if err != nil {
		return nil, err
	}
	return &Kernel{Kernel: &klp.Kernel{Tree: tree, HeadersDir: headers, Vmlinux: dbg.Vmlinux, ModulesDir: img.ModulesDir, Exports: exports, Namespaces: ns}, Vmlinuz: img.Vmlinuz}, nil
}

// CustomOptions name the parts of a kernel that is not a Debian package.
type CustomOptions struct {
	Source   string // source tarball or directory
	Config   string // its .config
	Headers  string // build tree for external modules, with Module.symvers
	Symbols  string // vmlinux with its symbol table, or the real System.map
	Modules  string // its /lib/modules/RELEASE directory
	TreesDir string // where prepared trees are kept
	Log      *slog.Logger
}

// Custom sets up a kernel from its parts.
func Custom(ctx context.Context, o CustomOptions) (*Kernel, error) {
	abs, err := filepath.Abs(o.Source)
	if err != nil {
		return nil, err
	}
	tree, err := ktree.Prepare(ctx, ktree.PrepareOptions{Tarball: abs, Config: o.Config, Dir: filepath.Join(o.TreesDir, "custom-"+filepath.Base(abs)), Log: o.Log})
	if err != nil {
		return nil, err
	}
	exports, ns, err := klp.ReadSymvers(filepath.Join(o.Headers, "Module.symvers"))
	if err != nil {
		return nil, err
	}
	return &Kernel{Kernel: &klp.Kernel{Tree: tree, HeadersDir: o.Headers, Vmlinux: o.Symbols, ModulesDir: o.Modules, Exports: exports, Namespaces: ns}}, nil
}
