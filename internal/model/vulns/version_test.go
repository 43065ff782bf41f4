package vulns

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in       string
		want     string // String(); "" = same as in
		mainline bool
		rc       bool
		branch   string
	}{
		{in: "6.1.129", branch: "6.1"},
		{in: "6.13", mainline: true, branch: "6.13"},
		{in: "6.13-rc1", mainline: true, rc: true, branch: "6.13"},
		{in: "7.2-rc5", mainline: true, rc: true, branch: "7.2"},
		{in: "4.19.316", branch: "4.19"},
		{in: "3.0", mainline: true, branch: "3.0"},
		{in: "3.0.101", branch: "3.0"},
		{in: "10.0", mainline: true, branch: "10.0"},
		{in: "6.1.0", want: "6.1", mainline: true, branch: "6.1"}, // uname's spelling of a mainline release
		// Before 3.0, mainline releases had three numbers and stable four.
		{in: "2.6.12", mainline: true, branch: "2.6.12"},
		{in: "2.6.32.19", branch: "2.6.32"},
		{in: "2.6.39-rc1", mainline: true, rc: true, branch: "2.6.39"},
		{in: "2.4.37.11", branch: "2.4.37"},
		{in: "1.2.13", mainline: true, branch: "1.2.13"},
		{in: "2.6.32.0", want: "2.6.32", mainline: true, branch: "2.6.32"},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if err != nil {
			t.Errorf("ParseVersion(%q) = %v", tt.in, err)
			continue
		}
		want := tt.want
		if want == "" {
			want = tt.in
		}
		if got := v.String(); got != want {
			t.Errorf("ParseVersion(%q).String() = %q, want %q", tt.in, got, want)
		}
		if got := v.IsMainline(); got != tt.mainline {
			t.Errorf("ParseVersion(%q).IsMainline() = %v, want %v", tt.in, got, tt.mainline)
		}
		if got := v.IsRC(); got != tt.rc {
			t.Errorf("ParseVersion(%q).IsRC() = %v, want %v", tt.in, got, tt.rc)
		}
		if got := v.Branch(); got != tt.branch {
			t.Errorf("ParseVersion(%q).Branch() = %q, want %q", tt.in, got, tt.branch)
		}
		if v.IsZero() {
			t.Errorf("ParseVersion(%q).IsZero() = true", tt.in)
		}
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, in := range []string{
		"", "0", "6", "6.", ".6", "6..1", "6.1.x", "6.x", "v6.1", "6.1 ", " 6.1", "6.1.129.1",
		"6.01", "06.1", "6.1.01", "6.13-rc", "6.13-rc0", "6.13-rc01", "6.13-rc1-rc2", "6.1.5-rc1",
		"6.1.0-rc1", "6.13rc1", "6.13-RC1", "0.1", "0.0", "2.6", "2.6.32.19.1", "2.6.32.1-rc1",
		"6.-1", "+6.1", "6.1\n", "6.1-rc1.2", "1234567.1", "6.4294967296", "6.1:abc",
	} {
		v, err := ParseVersion(in)
		if err == nil {
			t.Errorf("ParseVersion(%q) = %v, want error", in, v)
			continue
		}
		if !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("ParseVersion(%q) error %v does not wrap ErrUnknownVersion", in, err)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	// In release order; equal neighbours are not allowed.
	ordered := []string{
		"2.6.12", "2.6.12.1", "2.6.12.6", "2.6.13-rc1", "2.6.13-rc7", "2.6.13", "2.6.32",
		"2.6.32.19", "2.6.32.71", "2.6.39-rc1", "2.6.39", "2.6.39.4",
		"3.0-rc1", "3.0", "3.0.1", "3.0.101", "3.1", "3.10", "3.10.108",
		"4.9", "4.19.316", "5.4", "5.10.235", "6.1", "6.1.2", "6.1.10", "6.1.129",
		"6.2", "6.9", "6.12.14", "6.13-rc1", "6.13-rc2", "6.13-rc10", "6.13", "6.13.3",
		"6.14-rc1", "6.14", "7.0", "10.0",
	}
	vs := make([]Version, len(ordered))
	for i, s := range ordered {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatalf("ParseVersion(%q) = %v", s, err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(vs)
	slices.Reverse(shuffled)
	slices.SortFunc(shuffled, Version.Compare)
	if !slices.Equal(shuffled, vs) {
		t.Errorf("sorted = %v, want %v", shuffled, vs)
	}

	a, _ := ParseVersion("6.1.0")
	b, _ := ParseVersion("6.1")
	if a != b || a.Compare(b) != 0 {
		t.Errorf("6.1.0 and 6.1 differ: %#v %#v", a, b)
	}
}

func TestVersionText(t *testing.T) {
	var got struct{ V Version }
	if err := json.Unmarshal([]byte(`{"V":"6.13-rc1"}`), &got); err != nil {
		t.Fatal(err)
	}
	if got.V.String() != "6.13-rc1" {
		t.Errorf("unmarshal = %v, want 6.13-rc1", got.V)
	}
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"V":"6.13-rc1"}` {
		t.Errorf("marshal = %s", out)
	}
	if err := json.Unmarshal([]byte(`{"V":"6.x"}`), &got); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("unmarshal 6.x: %v, want ErrUnknownVersion", err)
	}
	var zero Version
	if !zero.IsZero() || zero.String() != "" {
		t.Errorf("zero Version: IsZero %v String %q", zero.IsZero(), zero.String())
	}
}

// FuzzParseVersion checks that a parsed version prints back to itself.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"6.1.129", "6.13-rc1", "2.6.32.19", "2.6.12", "6.1.0", "6.x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		w, err := ParseVersion(v.String())
		if err != nil || w != v {
			t.Fatalf("ParseVersion(%q) = %v; reparse = %v, %v", s, v, w, err)
		}
		if v.Compare(w) != 0 {
			t.Fatalf("%v.Compare(itself) != 0", v)
		}
	})
}
