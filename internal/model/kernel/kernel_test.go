package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		spec, ref string
		kind      SourceKind
		err       string
	}{
		{"debian:linux-source-6.1=6.1.176-1", "", SourceDebian, ""},
		{"debian:linux-source-6.1", "", "", "debian:PACKAGE=VERSION"},
		{"debian:Linux=1", "", "", "debian:PACKAGE=VERSION"},
		{"debian:linux-source-6.1=6.1.176-1", "v6.1", "", "--ref"},
		{"/srv/linux-6.1.176.tar.xz", "", SourceTarball, ""},
		{"https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.176.tar.xz", "", SourceTarball, ""},
		{"ftp://example.org/linux.tar.xz", "", "", "unsupported URL scheme"},
		{"https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git", "v6.1.176", SourceGit, ""},
		{"https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git", "", "", "needs --ref"},
		{"/srv/linux", "v6.1.176", SourceGit, ""},
		{"", "", "", "empty source"},
	}
	for _, tt := range tests {
		s, err := ParseSource(tt.spec, tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseSource(%q, %q) = %v, want error with %q", tt.spec, tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || s.Kind != tt.kind {
			t.Errorf("ParseSource(%q, %q) = %+v, %v; want kind %s", tt.spec, tt.ref, s, err, tt.kind)
		}
	}
	s, _ := ParseSource("debian:linux-source-6.1=6.1.176-1", "")
	if pkg, ver, ok := s.DebianPackage(); !ok || pkg != "linux-source-6.1" || ver != "6.1.176-1" || s.String() != "debian:linux-source-6.1=6.1.176-1" {
		t.Errorf("DebianPackage = %q %q %v, String %q", pkg, ver, ok, s.String())
	}
}

func TestValidate(t *testing.T) {
	good := func() *Kernel {
		return &Kernel{Name: "cloud", Release: "6.1.0-50-cloud-amd64", Version: "6.1.176", Config: []byte("CONFIG_X86_64=y\n"),
			Source: Source{Kind: SourceDebian, Spec: "linux-source-6.1=6.1.176-1"}}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*Kernel)
		want string
	}{
		{"bad name", func(k *Kernel) { k.Name = "a/b" }, "name"},
		{"bad release", func(k *Kernel) { k.Release = "latest" }, "uname -r"},
		{"bad version", func(k *Kernel) { k.Version = "6.1.x" }, "version"},
		{"rc version", func(k *Kernel) { k.Version = "6.13-rc1" }, "release candidates"},
		{"no config", func(k *Kernel) { k.Config = nil }, "no .config"},
		{"not a config", func(k *Kernel) { k.Config = []byte("hello\n") }, "CONFIG_"},
		{"bad fixed CVE", func(k *Kernel) { k.FixedCVEs = []string{"CVE-1"} }, "fixed CVE"},
		{"bad fixed commit", func(k *Kernel) { k.FixedCommits = []string{"xyz"} }, "fixed commit"},
	} {
		k := good()
		tt.mod(k)
		err := k.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestReadFixes(t *testing.T) {
	// The shape of a Debian changelog entry, and bare commit lines.
	in := `linux (6.1.176-1) bookworm-security; urgency=high

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.1.176
  * [x86] KVM: fix a thing (CVE-2026-12345, CVE-2025-21703)
  * netfilter: backport (CVE-2025-21703)
a06a8cc80fa203fde828a8429583f7e4fe27eca4
  not a commit: 12345
`
	cves, commits, err := ReadFixes(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cves, []string{"CVE-2025-21703", "CVE-2026-12345"}) || !slices.Equal(commits, []string{"a06a8cc80fa203fde828a8429583f7e4fe27eca4"}) {
		t.Errorf("ReadFixes = %v, %v", cves, commits)
	}
}

func TestDebianFor(t *testing.T) {
	d := DebianFor("6.1.0-50-cloud-amd64", "6.1.176-1")
	if d.Image != "linux-image-6.1.0-50-cloud-amd64" || d.Debug != "linux-image-6.1.0-50-cloud-amd64-dbg" ||
		d.Headers != "linux-headers-6.1.0-50-cloud-amd64" || d.Source != "linux-source-6.1" {
		t.Errorf("DebianFor = %+v", d)
	}
}

func TestReadFixesGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("  * fix (CVE-2026-43117)\n"))
	zw.Close()
	cves, _, err := ReadFixes(&buf)
	if err != nil || !slices.Equal(cves, []string{"CVE-2026-43117"}) {
		t.Errorf("ReadFixes(gzip) = %v, %v", cves, err)
	}
}
