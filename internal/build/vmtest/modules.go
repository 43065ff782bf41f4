package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/kmodfile"
)

// moduleName is the kernel's name for a module file (kmodfile.Name).
func moduleName(file string) string { return kmodfile.Name(file) }

func normalize(name string) string { return kmodfile.Normalize(name) }

// isModuleFile: a .ko, or one compressed as kmod knows (Debian 6.1 ships
// plain .ko files; its 6.12 line and trixie .ko.xz).
func isModuleFile(name string) bool { return kmodfile.IsModule(name) }

// moduleTree indexes a /lib/modules/<release> tree.
type moduleTree struct {
	dir    string
	byName map[string]string   // module name → path relative to dir
	dep    map[string][]string // from modules.dep, when the tree has one
}

// openModuleTree indexes dir. Dependencies come from modules.dep when it is
// there; a tree unpacked from a Debian image package has none (depmod runs
// when the package is installed), and then each module's own .modinfo
// "depends=" field is read instead.
func openModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, byName: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isModuleFile(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name, rel := moduleName(rel), filepath.ToSlash(rel)
		// Like depmod's default search order: updates/ overrides the
		// modules built with the kernel.
		if old, dup := t.byName[name]; !dup || treeRank(rel) < treeRank(old) {
			t.byName[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if len(t.byName) == 0 {
		return nil, fmt.Errorf("index modules in %s: no .ko files (want a /lib/modules/<release> tree)", dir)
	}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	} else if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	defer f.Close()
	t.dep = map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var names []string
		for _, d := range strings.Fields(deps) {
			names = append(names, moduleName(d))
		}
		t.dep[moduleName(mod)] = names
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return t, nil
}

func treeRank(rel string) int {
	switch {
	case strings.HasPrefix(rel, "updates/"):
		return 0
	case strings.HasPrefix(rel, "extra/"):
		return 1
	}
	return 2
}

// deps returns the modules name needs loaded before it.
func (t *moduleTree) deps(ctx context.Context, name string) ([]string, error) {
	if t.dep != nil {
		return t.dep[name], nil
	}
	data, err := readModule(ctx, filepath.Join(t.dir, t.byName[name]))
	if err != nil {
		return nil, err
	}
	info, err := modinfo(data)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	var out []string
	for _, d := range strings.Split(info["depends"], ",") {
		if d != "" {
			out = append(out, normalize(d))
		}
	}
	return out, nil
}

// resolve returns the modules to load for names, dependencies first, each
// once, as paths relative to the tree.
func (t *moduleTree) resolve(ctx context.Context, names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("resolve module %s: dependency cycle %s", name, strings.Join(append(from, name), " -> "))
		}
		if _, ok := t.byName[name]; !ok {
			if len(from) > 0 {
				return fmt.Errorf("resolve module %s (needed by %s): not in %s", name, from[len(from)-1], t.dir)
			}
			return fmt.Errorf("resolve module %s: not in %s (built in, or misspelt?)", name, t.dir)
		}
		state[name] = 1
		deps, err := t.deps(ctx, name)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, t.byName[name])
		return nil
	}
	for _, n := range names {
		if err := visit(normalize(n), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns a module file's ELF contents, decompressing .ko.gz,
// .ko.xz and .ko.zst: busybox insmod passes the file to the kernel as is,
// and whether the kernel can decompress depends on its config.
func readModule(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return kmodfile.Read(path)
}

// modinfo parses a module's .modinfo section: NUL-separated key=value.
func modinfo(data []byte) (info map[string]string, err error) {
	// debug/elf panics on some malformed files; a bad module must be an
	// error, not a crashed test binary.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse ELF: %v", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	info = map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			if _, seen := info[k]; !seen {
				info[k] = v
			}
		}
	}
	return info, nil
}
