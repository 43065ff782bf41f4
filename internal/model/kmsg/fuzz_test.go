package kmsg

import (
	"reflect"
	"strings"
	"testing"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"6,1234,5678901,-;message text\n",
		"6,182,915544,-;acpi PNP0A03:00: _OSC\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n",
		"6,565,8413761,-;provoke: bytes \\x01\\x7f tab\\x09end",
		"12,3,0,c,caller=T42;x", "", ";", "6,1,2;", "\\x", "6,1,2,-;\\x4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse record: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
			return
		}
		if len(r.Text) > MaxTextLen || len(r.Dict) > MaxDictEntries || r.Level < 0 || r.Level > 7 || r.Time < 0 {
			t.Errorf("ParseRecord(%q) = %+v: out of bounds", b, r)
		}
		Classify(r.Text)
	})
}

func FuzzParseText(f *testing.F) {
	for _, name := range []string{"warning-console.txt", "oops-console.txt", "hung-task-console.txt", "livepatch-console.txt"} {
		f.Add(readFixture(f, name))
	}
	for _, s := range []string{"[ 1.0] WARNING: x\r\n", "<4>[ 1.0][ T1] Oops", "[99999999999999999999.9] BUG: x", "\r\r[", "[ 1.0]  ? 0xffffffff\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		recs := ParseText(s)
		for _, r := range recs {
			if len(r.Text) > MaxTextLen || r.Time < 0 {
				t.Fatalf("record out of bounds: %+v", r)
			}
		}
		for _, rep := range Reports(recs) {
			if len(rep.Lines) > MaxReportLines || len(rep.Trace) > MaxTraceFrames || len(rep.Modules) > MaxModules {
				t.Fatalf("report out of bounds: %d lines, %d frames, %d modules", len(rep.Lines), len(rep.Trace), len(rep.Modules))
			}
			rep.Involves("m", []string{"f"})
		}
		if got, want := Problems(s), legacyProblems(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("Problems(%q) = %v, legacy %v", s, got, want)
		}
		Blockers(s)
		sc := NewScanner(strings.NewReader(s))
		for sc.Scan() {
			_ = sc.Record()
		}
		if _, err := ParseKmsg(s); err != nil && !strings.Contains(err.Error(), "parse record: ") {
			t.Fatalf("ParseKmsg error %q", err)
		}
	})
}
