package kconfig

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		arch    string
		version string
	}{
		{
			name: "debian header",
			in: "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.176 Kernel Configuration\n#\n" +
				"CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"\n" +
				"CONFIG_CC_IS_GCC=y\nCONFIG_GCC_VERSION=120200\n\n#\n# General setup\n#\n" +
				"# CONFIG_WERROR is not set\nCONFIG_EXT4_FS=m\nCONFIG_PHYSICAL_START=0x1000000\nCONFIG_LOCALVERSION=\"\"\n",
			want: map[string]string{
				"CONFIG_CC_VERSION_TEXT": `"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"`,
				"CONFIG_CC_IS_GCC":       "y",
				"CONFIG_GCC_VERSION":     "120200",
				"CONFIG_EXT4_FS":         "m",
				"CONFIG_PHYSICAL_START":  "0x1000000",
				"CONFIG_LOCALVERSION":    `""`,
			},
			arch: "x86", version: "6.1.176",
		},
		{
			name: "no header, CRLF, escapes, negative, last line wins",
			in:   "CONFIG_A=y\r\nCONFIG_CMDLINE=\"a \\\"b\\\" c\\\\\"\r\nCONFIG_N=-5\nCONFIG_A=m\n# CONFIG_B is not set\nCONFIG_C=n\n",
			want: map[string]string{"CONFIG_A": "m", "CONFIG_CMDLINE": `"a \"b\" c\\"`, "CONFIG_N": "-5"},
		},
		{
			name: "only not-set lines",
			in:   "# CONFIG_A is not set\n",
			want: map[string]string{},
		},
		{
			name: "not set overrides an earlier value",
			in:   "CONFIG_A=y\n# CONFIG_A is not set\n",
			want: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(c.Values, tc.want) {
				t.Errorf("values %v, want %v", c.Values, tc.want)
			}
			if c.Arch != tc.arch || c.Version != tc.version {
				t.Errorf("arch %q version %q, want %q %q", c.Arch, c.Version, tc.arch, tc.version)
			}
		})
	}
}

func TestParseConfigMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // in the error message
	}{
		{"empty", "", "no CONFIG_ lines"},
		{"comments only", "# hello\n\n#\n", "no CONFIG_ lines"},
		{"makefile", "obj-y += foo.o\n", `line 1: bad symbol name "obj-y +"`},
		{"no equals", "CONFIG_A=y\nCONFIG_B y\n", `line 2: expected CONFIG_NAME=value`},
		{"shell script", "#!/bin/sh\nexport CONFIG_A=y\n", `line 2: bad symbol name "export CONFIG_A"`},
		{"no prefix", "CONFIG_A=y\nFOO=bar\n", `line 2: bad symbol name "FOO"`},
		{"bad symbol", "CONFIG_A-B=y\n", "line 1: bad symbol name"},
		{"empty symbol", "CONFIG_=y\n", "line 1: bad symbol name"},
		{"empty value", "CONFIG_A=\n", "line 1: empty value"},
		{"unquoted string", "CONFIG_A=y\nCONFIG_B=hello world\n", `line 2: bad value "hello world"`},
		{"unterminated string", "CONFIG_A=\"abc\n", "line 1: unterminated string"},
		{"junk after string", "CONFIG_A=\"abc\" x\n", "line 1: text after the closing quote"},
		{"bad hex", "CONFIG_A=0xZZ\n", "line 1: bad hex number"},
		{"binary", "CONFIG_A=y\n\x7fELF\x02\x01\x01\x00\x00\n", "line 2 holds binary data"},
		{"invalid utf8", "\xff\xfe\n", "line 1 holds binary data"},
		{"bad not-set symbol", "# CONFIG_A-B is not set\n", "line 1: bad symbol name"},
		{"too long", "CONFIG_A=\"" + strings.Repeat("x", maxConfigLine) + "\"\n", "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrNotConfig) {
				t.Errorf("%v does not wrap ErrNotConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "not a kernel .config") {
				t.Errorf("error %q does not say a .config was expected", err)
			}
		})
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config")
	if err := os.WriteFile(good, []byte("# Linux/x86 6.1.176 Kernel Configuration\nCONFIG_X86_64=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(good)
	if err != nil || c.Get("X86_64") != "y" || c.Get("CONFIG_X86_64") != "y" || c.Version != "6.1.176" {
		t.Fatalf("got %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(bad, []byte("MZ\x00\x00binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfig(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want an error naming %s", err, bad)
	}
	if _, err := ReadConfig(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
}

func TestUnquoteConfig(t *testing.T) {
	for in, want := range map[string]string{
		`""`:              "",
		`"gcc-12"`:        "gcc-12",
		`"a \"b\" c\\"`:   `a "b" c\`,
		`"(none)"`:        "(none)",
		`"x\\y\\z"`:       `x\y\z`,
		`"trailing\\\\"`:  `trailing\\`,
		`"plain text 12"`: "plain text 12",
	} {
		if got := Unquote(in); got != want {
			t.Errorf("Unquote(%s) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("# Linux/x86 6.1.176 Kernel Configuration\nCONFIG_A=y\n# CONFIG_B is not set\n")
	f.Add("CONFIG_S=\"a \\\"q\\\"\"\nCONFIG_H=0x1f\nCONFIG_N=-3\n")
	f.Add("CONFIG_A=\n")
	f.Add("\x00\x01")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConfig(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrNotConfig) {
				t.Fatalf("error %v does not wrap ErrNotConfig", err)
			}
			return
		}
		for k, v := range c.Values {
			if !strings.HasPrefix(k, "CONFIG_") || !validSymbol(k) {
				t.Fatalf("bad symbol %q", k)
			}
			if checkConfigValue(v) != nil || v == "n" {
				t.Fatalf("bad value %q for %s", v, k)
			}
			if !strings.Contains(in, k+"="+v) {
				t.Fatalf("%s=%s not in the input", k, v)
			}
		}
	})
}
