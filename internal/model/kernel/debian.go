package kernel

import (
	"fmt"
	"regexp"
	"strings"
)

// DebianRelease is a Debian (or Ubuntu) kernel release as `uname -r`
// prints it, split into its parts. It is the one place that knows how
// these distributions name a kernel's packages. Three schemes:
//
//   - Debian up to 6.1 (bookworm): 6.1.0-50-cloud-amd64, an ABI number per
//     upload ("6.1.0-50"), one kbuild package per series (linux-kbuild-6.1);
//   - Debian from 6.12 (bookworm's 6.12 line, trixie, backports):
//     6.12.107+deb12-cloud-amd64, the ABI is the upstream version and a
//     suite tag ("6.12.107+deb12", "6.12.12+bpo"), and so is the kbuild
//     package's name (linux-kbuild-6.12.107+deb12);
//   - Ubuntu: 6.8.0-45-generic, a flavour without an architecture, common
//     headers in linux-headers-<ABI>, no kbuild package.
type DebianRelease struct {
	// Release is the kernel release, e.g. "6.1.0-50-cloud-amd64".
	Release string
	// Base is the upstream major.minor series, e.g. "6.1".
	Base string
	// ABI is the Debian ABI name, e.g. "6.1.0-50" or "6.12.107+deb12".
	ABI string
	// Flavour is what follows the ABI, e.g. "cloud-amd64" or "rt-amd64".
	Flavour string
	// Distro is "debian" or "ubuntu".
	Distro string
}

// Distributions DebianRelease knows.
const (
	DistroDebian = "debian"
	DistroUbuntu = "ubuntu"
)

var (
	// debianABIRE: "6.1.0-50" is the ABI name, "6.1" the series, the rest
	// the flavour.
	debianABIRE = regexp.MustCompile(`^((\d+\.\d+)\.\d+-\d+)-([a-z0-9][a-z0-9-]*)$`)
	// debianSuiteRE: "6.12.107+deb12" (or "+bpo") is the ABI name.
	debianSuiteRE = regexp.MustCompile(`^((\d+\.\d+)\.\d+\+[a-z]+\d*)-([a-z0-9][a-z0-9-]*)$`)
)

// ubuntuFlavours are the first words of Ubuntu's kernel flavours, which
// name no architecture (Debian's always do: amd64, cloud-arm64, 686-pae…).
var ubuntuFlavours = map[string]bool{
	"generic": true, "lowlatency": true, "aws": true, "azure": true, "gcp": true, "gke": true, "gkeop": true,
	"kvm": true, "oracle": true, "ibm": true, "nvidia": true, "raspi": true, "realtime": true, "oem": true,
	"intel": true, "xilinx": true, "fips": true, "virtual": true,
}

// ParseDebianRelease splits a Debian or Ubuntu kernel release.
func ParseDebianRelease(release string) (DebianRelease, error) {
	if m := debianSuiteRE.FindStringSubmatch(release); m != nil {
		return DebianRelease{Release: release, Base: m[2], ABI: m[1], Flavour: m[3], Distro: DistroDebian}, nil
	}
	m := debianABIRE.FindStringSubmatch(release)
	if m == nil {
		return DebianRelease{}, fmt.Errorf("parse kernel release %q: want a Debian release like 6.1.0-50-cloud-amd64 or 6.12.107+deb12-cloud-amd64 (or Ubuntu's 6.8.0-45-generic)", release)
	}
	r := DebianRelease{Release: release, Base: m[2], ABI: m[1], Flavour: m[3], Distro: DistroDebian}
	if first, _, _ := strings.Cut(r.Flavour, "-"); ubuntuFlavours[first] {
		r.Distro = DistroUbuntu
	}
	return r, nil
}

// suiteABI says whether the ABI is an upstream version with a suite tag
// (6.12.107+deb12) rather than an ABI number (6.1.0-50).
func (r DebianRelease) suiteABI() bool { return strings.Contains(r.ABI, "+") }

// ImagePackage is the package with vmlinuz, config and (on Debian) the
// modules.
func (r DebianRelease) ImagePackage() string { return "linux-image-" + r.Release }

// DebugPackage has the real System.map and vmlinux with debug info (the
// image package's System.map is a stub). Ubuntu's is a dbgsym package of
// the unsigned image.
func (r DebianRelease) DebugPackage() string {
	if r.Distro == DistroUbuntu {
		return "linux-image-unsigned-" + r.Release + "-dbgsym"
	}
	return "linux-image-" + r.Release + "-dbg"
}

// HeadersPackage has the flavour's build files (.config, Module.symvers,
// generated headers); its Makefile includes the -common tree.
func (r DebianRelease) HeadersPackage() string { return "linux-headers-" + r.Release }

// HeadersCommonPackage has the headers shared by all flavours of the ABI;
// Debian's realtime flavours have their own.
func (r DebianRelease) HeadersCommonPackage() string {
	switch {
	case r.Distro == DistroUbuntu:
		return "linux-headers-" + r.ABI
	case strings.HasPrefix(r.Flavour, "rt-"):
		return "linux-headers-" + r.ABI + "-common-rt"
	}
	return "linux-headers-" + r.ABI + "-common"
}

// KbuildPackage has the host programs of the kernel build (modpost,
// fixdep, objtool…): one per series up to 6.1, one per ABI after; ""
// for Ubuntu, whose headers carry them.
func (r DebianRelease) KbuildPackage() string {
	switch {
	case r.Distro == DistroUbuntu:
		return ""
	case r.suiteABI():
		return "linux-kbuild-" + r.ABI
	}
	return "linux-kbuild-" + r.Base
}

// SourcePackage has the patched source as usr/src/linux-source-<base>.tar.xz
// (Ubuntu: linux-source-<major.minor.patch>, a tar.bz2 in a directory).
func (r DebianRelease) SourcePackage() string {
	if r.Distro == DistroUbuntu {
		v, _, _ := strings.Cut(r.ABI, "-")
		return "linux-source-" + v
	}
	return "linux-source-" + r.Base
}
