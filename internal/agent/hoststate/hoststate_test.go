package hoststate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	st, err := s.Load()
	if err != nil || len(st.Kernels) != 0 {
		t.Fatalf("Load of a missing file = %+v, %v; want an empty state", st, err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	k := st.Kernel("6.1.0-50-cloud-amd64")
	k.Loaded = &Applied{Version: 3, Module: "tt_v3", CVEs: []string{"CVE-2026-1234"}, At: at}
	k.Good = &Applied{Version: 2, Module: "tt_v2", At: at, Confirmed: true}
	k.MarkBad(Bad{Version: 4, Module: "tt_v4", At: at, Reason: "WARNING in patched code"})
	k.MarkBad(Bad{Version: 4, Reason: "again"})
	st.LastPoll = &Poll{At: at, Kernel: "6.1.0-50-cloud-amd64", Result: "up_to_date", Newest: 3}
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("Load after Save = %+v, want %+v", got, st)
	}
	gk := got.Kernel("6.1.0-50-cloud-amd64")
	if !gk.IsBad(4) || gk.IsBad(3) || len(gk.Bad) != 1 {
		t.Errorf("bad versions = %+v, want only 4, once", gk.Bad)
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestMarkBadDropsGood(t *testing.T) {
	k := &Kernel{Good: &Applied{Version: 2}}
	k.MarkBad(Bad{Version: 2})
	if k.Good != nil {
		t.Errorf("Good = %+v after marking it bad, want none", k.Good)
	}
	for v := int64(0); v < MaxBad+10; v++ {
		k.MarkBad(Bad{Version: 100 + v})
	}
	if len(k.Bad) != MaxBad || k.Bad[len(k.Bad)-1].Version != 100+MaxBad+9 {
		t.Errorf("len(Bad) = %d (last %d), want %d keeping the newest", len(k.Bad), k.Bad[len(k.Bad)-1].Version, MaxBad)
	}
}

// TestCrashSafety: a save that dies before its rename (a leftover
// temporary file, as a crash leaves it) does not disturb the state, and a
// damaged file is refused rather than read as empty (which would forget
// the bad versions).
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: dir}
	st, _ := s.Load()
	st.Kernel("r").MarkBad(Bad{Version: 7, Reason: "oops"})
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves only a temporary file beside the state.
	if err := os.WriteFile(filepath.Join(dir, ".state.json.tmp-deadbeef"), []byte(`{"format":1,"kern`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !got.Kernel("r").IsBad(7) {
		t.Fatalf("Load after an interrupted save = %+v, %v; want version 7 still bad", got, err)
	}
	for _, tt := range []struct {
		name, content string
		want          error
	}{
		{"torn", `{"format":1,"kernels":{"r":{"bad":[{"vers`, nil},
		{"newer", `{"format":99,"kernels":{}}`, ErrNewerFormat},
	} {
		if err := os.WriteFile(s.Path(), []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load()
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Load of a %s file: error = %v, want %v", tt.name, err, tt.want)
		}
	}
	// A symbolic link planted at the path is refused, not written through.
	os.Remove(s.Path())
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(st); err == nil {
		t.Error("Save through a symbolic link: no error")
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("Save wrote through the link")
	}
}

func TestLock(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	f, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock: %v, want ErrLocked", err)
	}
	f.Close()
	g, err := s.Lock()
	if err != nil {
		t.Errorf("Lock after release: %v", err)
	}
	g.Close()
}

func TestDisabled(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		cmdline string
		file    bool
		want    bool
		why     string
	}{
		{"BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet", false, false, ""},
		{"root=/dev/vda1 tuxtape.disable=1", false, true, "command line"},
		{"tuxtape.disable", false, true, "command line"},
		{"tuxtape.disable=0", false, false, ""},
		{"tuxtape.disabled=1 xtuxtape.disable=1", false, false, ""},
		{"quiet", true, true, "kill switch file"},
	}
	for _, tt := range tests {
		os.Remove(filepath.Join(dir, DisableFile))
		if tt.file {
			os.WriteFile(filepath.Join(dir, DisableFile), nil, 0o600)
		}
		got, why := Disabled(tt.cmdline, dir)
		if got != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("Disabled(%q, file %v) = %v, %q; want %v, %q", tt.cmdline, tt.file, got, why, tt.want, tt.why)
		}
	}
}
