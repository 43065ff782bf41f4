package kernel

import (
	"fmt"
	"regexp"
	"strings"
)

// DebianRelease is a Debian kernel release as `uname -r` prints it
// (6.1.0-50-cloud-amd64), split into its parts. It is the one place that
// knows how Debian names a kernel's packages.
type DebianRelease struct {
	// Release is the kernel release, e.g. "6.1.0-50-cloud-amd64".
	Release string
	// Base is the upstream major.minor series, e.g. "6.1".
	Base string
	// ABI is the Debian ABI name, e.g. "6.1.0-50".
	ABI string
	// Flavour is what follows the ABI, e.g. "cloud-amd64" or "rt-amd64".
	Flavour string
}

// debianReleaseRE splits a Debian kernel release: "6.1.0-50" is the ABI
// name, "6.1" the series, the rest the flavour.
var debianReleaseRE = regexp.MustCompile(`^((\d+\.\d+)\.\d+-\d+)-([a-z0-9][a-z0-9-]*)$`)

// ParseDebianRelease splits a Debian kernel release.
func ParseDebianRelease(release string) (DebianRelease, error) {
	m := debianReleaseRE.FindStringSubmatch(release)
	if m == nil {
		return DebianRelease{}, fmt.Errorf("parse kernel release %q: want a Debian release like 6.1.0-50-cloud-amd64", release)
	}
	return DebianRelease{Release: release, Base: m[2], ABI: m[1], Flavour: m[3]}, nil
}

// ImagePackage is the package with vmlinuz, config and modules.
func (r DebianRelease) ImagePackage() string { return "linux-image-" + r.Release }

// DebugPackage has the real System.map and vmlinux with debug info (the
// image package's System.map is a stub).
func (r DebianRelease) DebugPackage() string { return "linux-image-" + r.Release + "-dbg" }

// HeadersPackage has the flavour's build files (.config, Module.symvers,
// generated headers); its Makefile includes the -common tree.
func (r DebianRelease) HeadersPackage() string { return "linux-headers-" + r.Release }

// HeadersCommonPackage has the headers shared by all flavours of the ABI;
// the realtime flavours have their own.
func (r DebianRelease) HeadersCommonPackage() string {
	if strings.HasPrefix(r.Flavour, "rt-") {
		return "linux-headers-" + r.ABI + "-common-rt"
	}
	return "linux-headers-" + r.ABI + "-common"
}

// KbuildPackage has the host programs of the kernel build (modpost, fixdep…).
func (r DebianRelease) KbuildPackage() string { return "linux-kbuild-" + r.Base }

// SourcePackage has the patched source as usr/src/linux-source-<base>.tar.xz.
func (r DebianRelease) SourcePackage() string { return "linux-source-" + r.Base }
