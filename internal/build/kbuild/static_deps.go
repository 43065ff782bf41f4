package kbuild

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// scanIncludes fills p.Deps with the .c files that the units' .c sources
// #include, directly or through another included .c (such files are
// compiled only as part of their includers), and with the tree files
// generated unit sources are made from. p must be sorted.
func (e *staticEval) scanIncludes(p *profile.Profile) error {
	bySrc := make(map[string][]int32)
	for i, u := range p.Units {
		bySrc[u.Source] = append(bySrc[u.Source], int32(i))
	}
	srcs := make([]string, 0, len(bySrc))
	for s := range bySrc {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)

	c := &incCache{e: e}
	found := make([][]string, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range e.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if e.cancelled() {
					continue
				}
				found[i], errs[i] = c.closure(srcs[i])
			}
		}()
	}
	for i := range srcs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := e.ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	deps := make(map[string][]int32)
	for i, src := range srcs {
		for _, d := range found[i] {
			deps[d] = append(deps[d], bySrc[src]...)
		}
	}
	for d, us := range deps {
		slices.Sort(us)
		deps[d] = slices.Compact(us)
	}
	if len(deps) > 0 {
		p.Deps = deps
	}
	return nil
}

type incCache struct {
	e      *staticEval
	direct onceMap[string, []string] // the .c files each file includes
}

// closure returns the files src includes, transitively, that matter as
// Deps: included .c files, or for a generated source the file it is
// generated from.
func (c *incCache) closure(src string) ([]string, error) {
	if !strings.HasSuffix(src, ".c") {
		return nil, nil
	}
	if !c.e.exists(src) {
		if from := generatedFrom(src); c.e.exists(from) {
			return []string{from}, nil
		}
		return nil, nil
	}
	var out []string
	seen := map[string]bool{src: true}
	queue := []string{src}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		incs, err := c.includes(f, src)
		if err != nil {
			return nil, err
		}
		for _, inc := range incs {
			if !seen[inc] {
				seen[inc] = true
				out = append(out, inc)
				queue = append(queue, inc)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// includes returns the .c files that file f #includes, resolved in the
// tree. unit is the unit being compiled, whose directory is usually on
// the include path too.
func (c *incCache) includes(f, unit string) ([]string, error) {
	return c.direct.get(f, func() ([]string, error) {
		data, err := os.ReadFile(c.e.fsPath(f))
		if err != nil {
			return nil, fmt.Errorf("scan %s for included .c files: %w", f, err)
		}
		var incs []string
		for _, name := range includedCFiles(data, c.e.cfg.Values) {
			if p := c.resolve(name, f, unit); p != "" {
				incs = append(incs, p)
			}
		}
		return incs, nil
	})
}

// resolve finds an included file the way the kernel's compile line would:
// "x" next to the including file, then next to the unit, then on the -I
// path (the tree top, include/, arch include/); <x> on the -I path only.
func (c *incCache) resolve(i cInclude, from, unit string) string {
	var dirs []string
	if !i.angle {
		dirs = append(dirs, path.Dir(from), path.Dir(unit))
	}
	srcarch, _ := c.e.global["SRCARCH"]
	arch := "x86"
	if srcarch != nil {
		arch = srcarch.raw()
	}
	dirs = append(dirs, "include", "arch/"+arch+"/include", ".")
	for _, d := range dirs {
		p := path.Clean(path.Join(d, i.name))
		if strings.HasPrefix(p, "../") || path.IsAbs(p) {
			continue
		}
		if c.e.exists(p) {
			return p
		}
	}
	return ""
}
