package kbuild

import (
	"path/filepath"
	"slices"
	"testing"
)

// The fixtures are cut from .cmd files of a real build of Debian's cloud
// config (6.1.176): kvm's Makefile builds virt/kvm/eventfd.o under a path
// of its own directory.
func TestReadCmd(t *testing.T) {
	tests := []struct {
		file, source, built string
		deps                []string
	}{
		{"eventfd.o.cmd", "virt/kvm/eventfd.c", "arch/x86/kvm/../../../virt/kvm/eventfd.o", []string{"include/linux/compiler-version.h", "include/linux/kconfig.h"}},
		{"inode.o.cmd", "fs/ext4/inode.c", "fs/ext4/inode.o", []string{"include/linux/compiler-version.h"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			source, built, deps, err := readCmd(filepath.Join("testdata", "cmd", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if source != tt.source || built != tt.built || !slices.Equal(deps, tt.deps) {
				t.Errorf("readCmd = %q, %q, %q; want %q, %q, %q", source, built, deps, tt.source, tt.built, tt.deps)
			}
		})
	}
}
