package kernel

import (
	"slices"
	"strings"
	"testing"
)

func TestConfigArch(t *testing.T) {
	tests := []struct {
		header  string
		symbols []string
		want    []string
		msg     string
	}{
		{"x86", []string{"CONFIG_X86_64"}, []string{ArchX86_64}, ""}, // Debian's header
		{"x86_64", []string{"CONFIG_X86_64"}, []string{ArchX86_64}, ""},
		{"x86", []string{"CONFIG_X86_32"}, []string{ArchI386}, ""},
		{"arm64", []string{"CONFIG_ARM64"}, []string{ArchARM64}, ""},
		{"x86", nil, []string{ArchX86_64, ArchI386}, ""}, // header only
		{"", []string{"CONFIG_ARM64"}, []string{ArchARM64}, ""},
		{"x86", []string{"CONFIG_ARM64"}, nil, "header says Linux/x86 but it sets CONFIG_ARM64"},
		{"", []string{"CONFIG_X86_64", "CONFIG_ARM64"}, nil, "a kernel is built for one architecture"},
		{"", nil, nil, "not a kernel config for any architecture"},
	}
	for _, tt := range tests {
		got, err := ConfigArch(tt.header, func(s string) string {
			if slices.Contains(tt.symbols, s) {
				return "y"
			}
			return ""
		})
		if tt.msg != "" {
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ConfigArch(%q, %v) = %v, %v; want error %q", tt.header, tt.symbols, got, err, tt.msg)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ConfigArch(%q, %v) = %v, %v; want %v", tt.header, tt.symbols, got, err, tt.want)
		}
	}
}

func TestDebianReleaseArch(t *testing.T) {
	for release, want := range map[string]string{
		"6.1.0-50-amd64":        ArchX86_64,
		"6.1.0-50-cloud-amd64":  ArchX86_64,
		"6.1.0-50-rt-amd64":     ArchX86_64,
		"6.1.0-50-arm64":        ArchARM64,
		"6.1.0-50-cloud-arm64":  ArchARM64,
		"6.1.0-50-686-pae":      ArchI386,
		"6.1.0-50-rt-686-pae":   ArchI386,
		"6.1.0-50-armmp-lpae":   ArchARM,
		"6.1.0-50-powerpc64le":  "ppc64le",
		"6.1.0-50-customflavor": "",
	} {
		r, err := ParseDebianRelease(release)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Arch(); got != want {
			t.Errorf("%s: Arch() = %q, want %q", release, got, want)
		}
	}
	for in, want := range map[string]string{"amd64": ArchX86_64, "X86_64": ArchX86_64, "aarch64": ArchARM64, "i686": ArchI386} {
		if got, ok := NormalizeArch(in); !ok || got != want {
			t.Errorf("NormalizeArch(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := NormalizeArch("vax"); ok {
		t.Error("NormalizeArch(vax) is ok")
	}
}
