package kernel

import (
	"fmt"
	"strings"
)

// Architectures, named as uname -m prints them (the names --arch takes).
const (
	ArchX86_64 = "x86_64"
	ArchI386   = "i386"
	ArchARM64  = "arm64"
	ArchARM    = "arm"
)

// archAliases maps the names other tools use (Debian's, GNU's, the
// kernel's ARCH=) to the one Kernel.Arch holds.
var archAliases = map[string]string{
	"x86_64": ArchX86_64, "amd64": ArchX86_64, "x86-64": ArchX86_64,
	"i386": ArchI386, "i686": ArchI386, "686": ArchI386, "x86_32": ArchI386,
	"arm64": ArchARM64, "aarch64": ArchARM64,
	"arm": ArchARM, "armhf": ArchARM, "armel": ArchARM,
	"ppc64le": "ppc64le", "ppc64el": "ppc64le",
	"s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loongarch64", "loong64": "loongarch64",
}

// NormalizeArch returns the Kernel.Arch name of arch, or false when it is
// not an architecture TuxTape knows.
func NormalizeArch(arch string) (string, bool) {
	a, ok := archAliases[strings.ToLower(arch)]
	return a, ok
}

// Arch is the architecture a Debian flavour is built for ("cloud-amd64"
// is x86_64, "686-pae" i386), or "" when the flavour does not say.
func (r DebianRelease) Arch() string {
	for _, part := range strings.Split(r.Flavour, "-") {
		switch part {
		case "amd64":
			return ArchX86_64
		case "arm64":
			return ArchARM64
		case "686":
			return ArchI386
		case "armmp", "marvell", "rpi":
			return ArchARM
		case "powerpc64le":
			return "ppc64le"
		case "s390x":
			return "s390x"
		case "riscv64":
			return "riscv64"
		case "loong64":
			return "loongarch64"
		}
	}
	return ""
}

// archSymbols are the symbols that say for which architecture a .config
// was made: exactly one of them is set in a real one.
var archSymbols = []struct{ symbol, arch string }{
	{"CONFIG_X86_64", ArchX86_64},
	{"CONFIG_X86_32", ArchI386},
	{"CONFIG_ARM64", ArchARM64},
	{"CONFIG_ARM", ArchARM},
	{"CONFIG_PPC64", "ppc64le"},
	{"CONFIG_S390", "s390x"},
	{"CONFIG_RISCV", "riscv64"},
	{"CONFIG_LOONGARCH", "loongarch64"},
}

// headerFamilies maps the architecture of a config's "# Linux/ARCH
// VERSION Kernel Configuration" header (the kernel's SRCARCH, or the ARCH
// given to make) to the architectures it covers.
var headerFamilies = map[string][]string{
	"x86":       {ArchX86_64, ArchI386},
	"x86_64":    {ArchX86_64},
	"i386":      {ArchI386},
	"arm64":     {ArchARM64},
	"arm":       {ArchARM},
	"powerpc":   {"ppc64le"},
	"s390":      {"s390x"},
	"riscv":     {"riscv64"},
	"loongarch": {"loongarch64"},
}

// ConfigArch says which architectures a .config is for, from its header
// arch (kconfig.Config.Arch, "" when it has no header) and its symbols
// (get returns a symbol's value). It is an error when the two disagree,
// and when neither names an architecture: such a file is not a kernel
// config for any architecture.
func ConfigArch(header string, get func(symbol string) string) ([]string, error) {
	var set []string
	var symbols []string
	for _, s := range archSymbols {
		if get(s.symbol) == "y" {
			set = append(set, s.arch)
			symbols = append(symbols, s.symbol)
		}
	}
	if len(set) > 1 {
		return nil, fmt.Errorf("%w: the config sets %s: a kernel is built for one architecture", ErrInvalid, strings.Join(symbols, " and "))
	}
	var family []string
	if header != "" {
		var ok bool
		if family, ok = headerFamilies[header]; !ok {
			family = []string{header}
		}
	}
	switch {
	case len(set) == 0 && family == nil:
		return nil, fmt.Errorf("%w: the config names no architecture (no \"# Linux/ARCH VERSION Kernel Configuration\" header, none of CONFIG_X86_64, CONFIG_X86_32 or CONFIG_ARM64): it is not a kernel config for any architecture", ErrInvalid)
	case len(set) == 0:
		return family, nil
	case family == nil:
		return set, nil
	}
	for _, a := range family {
		if a == set[0] {
			return set, nil
		}
	}
	return nil, fmt.Errorf("%w: the config's header says Linux/%s but it sets %s (%s)", ErrInvalid, header, symbols[0], set[0])
}
