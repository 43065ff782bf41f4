package klp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/kmodfile"
)

// modulePath finds the file of module name (as the kernel spells it, or
// with dashes) in the target's modules tree: a plain .ko, or a compressed
// .ko.xz, .ko.zst or .ko.gz (Debian's 6.12 line ships .ko.xz). Like
// depmod, a module under updates/ wins over extra/, and extra/ over the
// modules built with the kernel.
func (k *Kernel) modulePath(name string) (string, error) {
	want := kmodfile.Normalize(name)
	found, rank := "", 0
	err := filepath.WalkDir(k.ModulesDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !kmodfile.IsModule(d.Name()) || kmodfile.Name(d.Name()) != want {
			return nil
		}
		rel, err := filepath.Rel(k.ModulesDir, p)
		if err != nil {
			return err
		}
		if r := moduleRank(filepath.ToSlash(rel)); found == "" || r < rank {
			found, rank = p, r
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("find module %s: %w", name, err)
	}
	if found == "" {
		return "", fmt.Errorf("module %s is not in %s: it is not built in this kernel's configuration", name, k.ModulesDir)
	}
	return found, nil
}

// hasModule says whether the target has a module named name.
func (k *Kernel) hasModule(name string) bool {
	_, err := k.modulePath(name)
	return err == nil
}

// moduleRank orders module files as depmod's default search does.
func moduleRank(rel string) int {
	switch {
	case strings.HasPrefix(rel, "updates/"):
		return 0
	case strings.HasPrefix(rel, "extra/"):
		return 1
	}
	return 2
}
