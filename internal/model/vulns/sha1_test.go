package vulns

import (
	"errors"
	"slices"
	"testing"
)

func TestParseSHA1(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"CVE-2025-21703", testdataFile(t, "CVE-2025-21703.sha1"), []string{"638ba5089324796c2ee49af10427459c2de35f71"}},
		{"CVE-2023-53642 four lines", testdataFile(t, "CVE-2023-53642.sha1"), []string{
			"76ce32682635fe907e0f8e64e039e773e5c7508f",
			"90510aed20a26e1a4dede4ef6b640e6a4122f38f",
			"b805d212c394f291f116b12c53401e7ba0c4d408",
			"e046fe5a36a970bc14fbfbcb2074a48776f6b671",
		}},
		{"CVE-2026-52945 trailing blank line", testdataFile(t, "CVE-2026-52945.sha1"), []string{
			"e94b369ff82f9bc84f090f271bd78f41c9f6ab2f",
			"168ee1549fa24fff2ab924a2ca7b1d85f30e062d",
			"42bc3f45425b607a5ca7b7aaaab661b54407c8f8",
			"cfdb22762f903d95c36ab91e9fe6167f22fa9f6d",
		}},
		{"empty (rejected records)", nil, nil},
		{"CRLF", []byte("638ba5089324796c2ee49af10427459c2de35f71\r\n"), []string{"638ba5089324796c2ee49af10427459c2de35f71"}},
	}
	for _, tt := range tests {
		got, err := ParseSHA1(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: ParseSHA1 = %q, %v, want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestParseSHA1Errors(t *testing.T) {
	for _, in := range []string{
		"000000000", // CVE-2025-0927, a rejected record
		"638ba5089324796c2ee49af10427459c2de35f71\n638ba508",
		"638BA5089324796C2EE49AF10427459C2DE35F71",
		"638ba5089324796c2ee49af10427459c2de35f71 extra",
		"g38ba5089324796c2ee49af10427459c2de35f71",
	} {
		if got, err := ParseSHA1([]byte(in)); !errors.Is(err, ErrBadCommit) {
			t.Errorf("ParseSHA1(%q) = %q, %v, want ErrBadCommit", in, got, err)
		}
	}
}

func TestShortCommit(t *testing.T) {
	for in, want := range map[string]string{
		"8ef29ff49a85b14340a5f8e8687380b921dba367": "8ef29ff49a85",
		"8ef29ff49a85": "8ef29ff49a85",
		"abc":          "abc",
		"":             "",
	} {
		if got := ShortCommit(in); got != want {
			t.Errorf("ShortCommit(%q) = %q, want %q", in, got, want)
		}
	}
}
