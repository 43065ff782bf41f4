package kbuild

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/tuxtape/tuxtape/internal/model/profile"
	"golang.org/x/sync/errgroup"
)

// ErrNotBuilt is returned for a directory without a finished build.
var ErrNotBuilt = errors.New("not a finished kernel build")

// ReadBuild derives the real profile of a finished in-tree build in dir:
// vmlinux's objects are the members of vmlinux.a and the lib.a archives it
// links, each module's objects are listed in its .mod file (named by
// modules.order), and each object's .cmd file names its source and every
// file its compilation read.
func ReadBuild(ctx context.Context, dir string) (*profile.Profile, error) {
	objs, err := vmlinuxObjects(ctx, dir)
	if err != nil {
		return nil, err
	}
	target := make(map[string]string, len(objs))
	for _, o := range objs {
		target[o] = profile.Vmlinux
	}
	mods, err := moduleObjects(dir)
	if err != nil {
		return nil, err
	}
	for mod, os := range mods {
		for _, o := range os {
			target[o] = mod
		}
	}

	type result struct {
		unit profile.Unit
		deps []string
		ok   bool
	}
	names := make([]string, 0, len(target))
	for o := range target {
		names = append(names, o)
	}
	slices.Sort(names)
	results := make([]result, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, o := range names {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			src, built, deps, err := readCmd(filepath.Join(dir, path.Dir(o), "."+path.Base(o)+".cmd"))
			if errors.Is(err, os.ErrNotExist) {
				// Objects kbuild did not compile from a source (a few
				// generated or shipped ones) have no .cmd to go by.
				return nil
			}
			if err != nil {
				return err
			}
			u := profile.Unit{Source: src, Object: o, Target: target[o]}
			if built != o && cleanPath(built) == o {
				u.Built = built
			}
			results[i] = result{u, deps, src != ""}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p := &profile.Profile{Kind: profile.KindReal}
	for _, r := range results {
		if r.ok {
			p.Units = append(p.Units, r.unit)
		}
	}
	p.Sort()
	pos := make(map[string]int32, len(p.Units))
	for i, u := range p.Units {
		pos[u.Object] = int32(i)
	}
	sources := p.Sources()
	p.Deps = make(map[string][]int32)
	for _, r := range results {
		if !r.ok {
			continue
		}
		i := pos[r.unit.Object]
		for _, d := range r.deps {
			if d != r.unit.Source && !sources[d] {
				p.Deps[d] = append(p.Deps[d], i)
			}
		}
	}
	for d, us := range p.Deps {
		slices.Sort(us)
		p.Deps[d] = slices.Compact(us)
	}
	return p, nil
}

// vmlinuxObjects lists the objects linked into vmlinux.
func vmlinuxObjects(ctx context.Context, dir string) ([]string, error) {
	archives := []string{"vmlinux.a"}
	for _, lib := range []string{"lib/lib.a", "arch/x86/lib/lib.a"} {
		if _, err := os.Stat(filepath.Join(dir, lib)); err == nil {
			archives = append(archives, lib)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vmlinux.a")); err != nil {
		return nil, fmt.Errorf("%s: %w: no vmlinux.a (run the full build first)", dir, ErrNotBuilt)
	}
	var objs []string
	for _, a := range archives {
		// vmlinux.a is a thin archive of thin archives; ar flattens it.
		cmd := exec.CommandContext(ctx, "ar", "t", a)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", filepath.Join(dir, a), err)
		}
		for _, l := range strings.Fields(string(out)) {
			if strings.HasSuffix(l, ".o") {
				objs = append(objs, cleanPath(l))
			}
		}
	}
	return objs, nil
}

// moduleObjects maps each module of modules.order to its objects.
func moduleObjects(dir string) (map[string][]string, error) {
	order, err := os.ReadFile(filepath.Join(dir, "modules.order"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a kernel without modules
	}
	if err != nil {
		return nil, fmt.Errorf("read modules.order: %w", err)
	}
	mods := make(map[string][]string)
	for _, m := range strings.Fields(string(order)) {
		m = cleanPath(m)
		base := strings.TrimSuffix(strings.TrimSuffix(m, ".ko"), ".o")
		data, err := os.ReadFile(filepath.Join(dir, base+".mod"))
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m, err)
		}
		name := strings.ReplaceAll(path.Base(base), "-", "_")
		for _, o := range strings.Fields(string(data)) {
			mods[name] = append(mods[name], cleanPath(o))
		}
	}
	return mods, nil
}

// readCmd reads an object's .cmd file: its source, the path kbuild built
// it under, and the files its compilation read, as paths relative to the
// tree. Files outside the tree (compiler headers) and Kconfig dependency
// stamps are left out.
func readCmd(name string) (source, built string, deps []string, err error) {
	f, err := os.Open(name)
	if err != nil {
		return "", "", nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256<<10), 16<<20)
	inDeps := false
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("cmd_")) && built == "":
			if k, _, ok := bytes.Cut(line, []byte(" :=")); ok {
				built = string(k[len("cmd_"):])
			}
		case bytes.HasPrefix(line, []byte("source_")):
			if _, v, ok := bytes.Cut(line, []byte(":=")); ok {
				source = cleanPath(string(bytes.TrimSpace(v)))
			}
		case bytes.HasPrefix(line, []byte("deps_")):
			inDeps = true
		case inDeps:
			d := bytes.TrimSpace(line)
			d = bytes.TrimSpace(bytes.TrimSuffix(d, []byte{'\\'}))
			if len(d) == 0 {
				inDeps = false
				continue
			}
			if bytes.HasPrefix(d, []byte("$(")) || d[0] == '/' {
				continue
			}
			deps = append(deps, cleanPath(string(d)))
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	if strings.HasPrefix(source, "/") || strings.HasPrefix(source, "../") {
		source = "" // out of tree: not a kernel source file
	}
	return source, built, deps, nil
}

func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean(p), "./")
}
