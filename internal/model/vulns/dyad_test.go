package vulns

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseDyadReal(t *testing.T) {
	tests := []struct {
		file string
		n    int
		pick int // index of the branch to compare
		want Branch
	}{
		{"CVE-2025-21703.dyad", 8, 3, Branch{"6.1.121", "10df49cfca73dfbbdb6c4150d859f7e8926ae427", "6.1.129", "7b79ca9a1de6a428d486ff52fb3d602321c08f55"}},
		{"CVE-2025-21703.dyad", 8, 7, Branch{"6.13", "f8d4bc455047cf3903cd6f85f49978987dbb3027", "6.14", "638ba5089324796c2ee49af10427459c2de35f71"}},
		// Introduced and fixed in the same stable release.
		{"CVE-2024-26581.dyad", 9, 0, Branch{"4.19.316", "8284a79136c384059e85e278da2210b809730287", "4.19.316", "c60d252949caf9aba537525195edae6bbabc35eb"}},
		// A branch with no fix: "…:0:0".
		{"CVE-2024-26581.dyad", 9, 8, Branch{"6.4.8", "cd66733932399475fe933cb3ec03e687ed401462", "", ""}},
		// Unknown introducer: "0:0:…".
		{"CVE-2026-46017.dyad", 2, 0, Branch{"", "", "7.0.4", "cbf75cf212ee6e499abc1757fb4b5ae6d70ed0aa"}},
		// A 2.6-era stable version with four numbers.
		{"CVE-2023-54121.dyad", 4, 3, Branch{"2.6.32.19", "c87afd35a28b2661a2626a1b28e9fd69adcad9f9", "", ""}},
		// Release candidates (a rejected record).
		{"CVE-2025-23139.dyad", 9, 8, Branch{"6.15-rc1", "366ceff495f902182d42b6f41525c2474caf3f9a", "6.15-rc1", "5df5dafc171b90d0b8d51547a82657cd5a1986c7"}},
	}
	for _, tt := range tests {
		got, err := ParseDyad(testdataFile(t, tt.file))
		if err != nil {
			t.Errorf("ParseDyad(%s) = %v", tt.file, err)
			continue
		}
		if len(got) != tt.n {
			t.Errorf("ParseDyad(%s) gave %d branches, want %d", tt.file, len(got), tt.n)
			continue
		}
		if got[tt.pick] != tt.want {
			t.Errorf("ParseDyad(%s)[%d] = %+v, want %+v", tt.file, tt.pick, got[tt.pick], tt.want)
		}
	}
}

func TestParseDyad(t *testing.T) {
	const a = "83c6ab12f08dcc09d4c5ac86fdb89736b28f1d31"
	const b = "e395fec75ac2dbffc99b4bce57b7f1f3c5449f2c"
	tests := []struct {
		name string
		in   string
		want []Branch
	}{
		{"empty", "", nil},
		{"comments only", "# dyad version: 1.2.0\n#\tgetting vulnerable:fixed pairs\n", nil},
		{"blank lines and CRLF", "\r\n# c\r\n\r\n5.4.288:" + a + ":5.4.291:" + b + "\r\n\r\n", []Branch{{"5.4.288", a, "5.4.291", b}}},
		{"no final newline", "5.4.288:" + a + ":5.4.291:" + b, []Branch{{"5.4.288", a, "5.4.291", b}}},
		{"surrounding space", "  6.13:" + a + ":6.14:" + b + "  \n", []Branch{{"6.13", a, "6.14", b}}},
		{"uname-style version canonicalized", "6.1.0:" + a + ":0:0\n", []Branch{{"6.1", a, "", ""}}},
	}
	for _, tt := range tests {
		got, err := ParseDyad([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: ParseDyad(%q) = %v", tt.name, tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: ParseDyad(%q) = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestParseDyadErrors(t *testing.T) {
	const a = "83c6ab12f08dcc09d4c5ac86fdb89736b28f1d31"
	const b = "e395fec75ac2dbffc99b4bce57b7f1f3c5449f2c"
	tests := []struct {
		in      string
		wantErr string // substring
		is      error
	}{
		{"# c\n# c\n6.x:" + a + ":6.1:" + b + "\n", `line 3: introduced: unknown version "6.x"`, ErrUnknownVersion},
		{"6.1:" + a + ":6.1.x:" + b, `line 1: fixed: unknown version "6.1.x"`, ErrUnknownVersion},
		{"6.1:" + strings.ToUpper(a) + ":6.2:" + b, "bad commit id", ErrBadCommit},
		{"6.1:" + a[:12] + ":6.2:" + b, "bad commit id", ErrBadCommit},
		{"6.1:" + a + ":6.2", "want 4 colon-separated fields, got 3", nil},
		{"6.1:" + a + ":6.2:" + b + ":x", "got 5", nil},
		{"0:0:0:0", "neither introduced nor fixed", nil},
		{"0:" + a + ":6.2:" + b, "both or neither must be 0", nil},
		{"6.1:0:6.2:" + b, "both or neither must be 0", nil},
		{"garbage", `line 1: want 4 colon-separated fields, got 1 in "garbage"`, nil},
	}
	for _, tt := range tests {
		_, err := ParseDyad([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseDyad(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("ParseDyad(%q) = %v, want it to wrap %v", tt.in, err, tt.is)
		}
		if !strings.Contains(err.Error(), "line ") {
			t.Errorf("ParseDyad(%q) = %v: error names no line", tt.in, err)
		}
	}
}

func FuzzParseDyad(f *testing.F) {
	for _, b := range testdataGlob(f, "*.dyad") {
		f.Add(b)
	}
	f.Add([]byte("0:0:0:0\n6.1:0:0:0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		branches, err := ParseDyad(data)
		if err != nil {
			return
		}
		for _, b := range branches {
			for _, v := range []string{b.IntroducedVersion, b.FixedVersion} {
				if v == "" {
					continue
				}
				if _, err := ParseVersion(v); err != nil {
					t.Fatalf("branch %+v has bad version: %v", b, err)
				}
			}
			if (b.IntroducedVersion == "") != (b.IntroducedCommit == "") || (b.FixedVersion == "") != (b.FixedCommit == "") {
				t.Fatalf("branch %+v: version without commit", b)
			}
		}
	})
}
