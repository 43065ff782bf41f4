package kernel

import "testing"

func TestParseDebianRelease(t *testing.T) {
	tests := []struct {
		release                                    string
		base, abi, flavour, distro                 string
		common, kbuild, source, debug, image, arch string
	}{
		{"6.1.0-50-cloud-amd64", "6.1", "6.1.0-50", "cloud-amd64", DistroDebian,
			"linux-headers-6.1.0-50-common", "linux-kbuild-6.1", "linux-source-6.1", "linux-image-6.1.0-50-cloud-amd64-dbg", "linux-image-6.1.0-50-cloud-amd64", ArchX86_64},
		{"6.1.0-50-rt-amd64", "6.1", "6.1.0-50", "rt-amd64", DistroDebian,
			"linux-headers-6.1.0-50-common-rt", "linux-kbuild-6.1", "linux-source-6.1", "linux-image-6.1.0-50-rt-amd64-dbg", "linux-image-6.1.0-50-rt-amd64", ArchX86_64},
		// bookworm's 6.12 line (names checked with apt-cache show).
		{"6.12.107+deb12-cloud-amd64", "6.12", "6.12.107+deb12", "cloud-amd64", DistroDebian,
			"linux-headers-6.12.107+deb12-common", "linux-kbuild-6.12.107+deb12", "linux-source-6.12", "linux-image-6.12.107+deb12-cloud-amd64-dbg", "linux-image-6.12.107+deb12-cloud-amd64", ArchX86_64},
		{"6.12.107+deb12-rt-amd64", "6.12", "6.12.107+deb12", "rt-amd64", DistroDebian,
			"linux-headers-6.12.107+deb12-common-rt", "linux-kbuild-6.12.107+deb12", "linux-source-6.12", "linux-image-6.12.107+deb12-rt-amd64-dbg", "linux-image-6.12.107+deb12-rt-amd64", ArchX86_64},
		{"6.12.48+deb13-arm64", "6.12", "6.12.48+deb13", "arm64", DistroDebian,
			"linux-headers-6.12.48+deb13-common", "linux-kbuild-6.12.48+deb13", "linux-source-6.12", "linux-image-6.12.48+deb13-arm64-dbg", "linux-image-6.12.48+deb13-arm64", ArchARM64},
		{"6.12.12+bpo-amd64", "6.12", "6.12.12+bpo", "amd64", DistroDebian,
			"linux-headers-6.12.12+bpo-common", "linux-kbuild-6.12.12+bpo", "linux-source-6.12", "linux-image-6.12.12+bpo-amd64-dbg", "linux-image-6.12.12+bpo-amd64", ArchX86_64},
		{"6.8.0-45-generic", "6.8", "6.8.0-45", "generic", DistroUbuntu,
			"linux-headers-6.8.0-45", "", "linux-source-6.8.0", "linux-image-unsigned-6.8.0-45-generic-dbgsym", "linux-image-6.8.0-45-generic", ""},
		{"6.8.0-1015-aws", "6.8", "6.8.0-1015", "aws", DistroUbuntu,
			"linux-headers-6.8.0-1015", "", "linux-source-6.8.0", "linux-image-unsigned-6.8.0-1015-aws-dbgsym", "linux-image-6.8.0-1015-aws", ""},
	}
	for _, tt := range tests {
		r, err := ParseDebianRelease(tt.release)
		if err != nil {
			t.Errorf("ParseDebianRelease(%q) = %v", tt.release, err)
			continue
		}
		for _, c := range []struct{ what, got, want string }{
			{"Base", r.Base, tt.base}, {"ABI", r.ABI, tt.abi}, {"Flavour", r.Flavour, tt.flavour}, {"Distro", r.Distro, tt.distro},
			{"HeadersCommonPackage()", r.HeadersCommonPackage(), tt.common}, {"KbuildPackage()", r.KbuildPackage(), tt.kbuild},
			{"SourcePackage()", r.SourcePackage(), tt.source}, {"DebugPackage()", r.DebugPackage(), tt.debug},
			{"ImagePackage()", r.ImagePackage(), tt.image}, {"HeadersPackage()", r.HeadersPackage(), "linux-headers-" + tt.release},
			{"Arch()", r.Arch(), tt.arch},
		} {
			if c.got != c.want {
				t.Errorf("ParseDebianRelease(%q).%s = %q, want %q", tt.release, c.what, c.got, c.want)
			}
		}
	}
	for _, bad := range []string{"", "6.1", "6.1.0-50", "6.12.107+deb12", "linux-6.1.0-50-amd64", "6.1.0-50-cloud amd64", "6.12.107+-amd64", "6.12.107+deb12-", "6.12+deb12-amd64"} {
		if r, err := ParseDebianRelease(bad); err == nil {
			t.Errorf("ParseDebianRelease(%q) = %+v, want an error", bad, r)
		}
	}
}

func TestDebianForSuiteRelease(t *testing.T) {
	d := DebianFor("6.12.107+deb12-cloud-amd64", "6.12.107-1~deb12u1")
	want := Debian{Version: "6.12.107-1~deb12u1", Image: "linux-image-6.12.107+deb12-cloud-amd64", Headers: "linux-headers-6.12.107+deb12-cloud-amd64",
		Debug: "linux-image-6.12.107+deb12-cloud-amd64-dbg", Source: "linux-source-6.12"}
	if *d != want {
		t.Errorf("DebianFor(6.12.107+deb12-cloud-amd64) = %+v, want %+v", *d, want)
	}
}
