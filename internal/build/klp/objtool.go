package klp

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

// objtoolSections are the sections objtool makes from a whole object.
var objtoolSections = map[string]bool{
	".return_sites": true, ".retpoline_sites": true, ".call_sites": true, ".ibt_endbr_seal": true,
	".static_call_sites": true, ".orc_unwind": true, ".orc_unwind_ip": true, ".cfi_sites": true,
}

// objtoolAtLink says whether kbuild runs objtool on a module once it is
// linked rather than on each object ("delayed objtool", scripts/Makefile.lib:
// CONFIG_X86_KERNEL_IBT or CONFIG_LTO_CLANG), as the kernel's build tree
// for external modules at headersDir is configured. Then objtool makes
// .return_sites, ORC data and the rest for the whole patch module.
func objtoolAtLink(headersDir string) (bool, error) {
	f, err := os.Open(filepath.Join(headersDir, "include", "config", "auto.conf"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the headers' configuration: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "CONFIG_X86_KERNEL_IBT=y", "CONFIG_LTO_CLANG=y":
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read the headers' configuration: %w", err)
	}
	return false, nil
}

// stripObjtool removes from a patch object the sections objtool made when
// it ran on the unit (with delayed objtool, the objects of single-object
// modules are the module, so objtool runs on them): objtool runs again on
// the linked patch module and, finding one of them there, makes none
// ("file already has .orc_unwind section, skipping"), which leaves the
// patch's own returns off .return_sites.
func stripObjtool(f *elfobj.File) {
	for _, s := range append([]*elfobj.Section(nil), f.Sections...) {
		if objtoolSections[s.Name] {
			f.RemoveSection(s)
		}
	}
}
