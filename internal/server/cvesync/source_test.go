package cvesync_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// putRecord copies a real record's files from model/vulns/testdata into
// dir of the upstream (published/2025, say).
func putRecord(u *upstream, dir, id string) {
	u.t.Helper()
	src := filepath.Join(testenv.RepoRoot(), "internal", "model", "vulns", "testdata")
	n := 0
	for _, ext := range []string{".json", ".dyad", ".sha1", ".cvss", ".mbox"} {
		data, err := os.ReadFile(filepath.Join(src, id+ext))
		if err != nil {
			continue
		}
		u.write(filepath.Join(dir, id+ext), string(data))
		n++
	}
	if n == 0 {
		u.t.Fatalf("no test record %s in %s", id, src)
	}
}

// TestRelativeSource: `tuxtape sync --source vulns` run twice from the
// same directory fetches the second time too, the store records the
// source absolute, and another working directory works as well.
func TestRelativeSource(t *testing.T) {
	ctx := context.Background()
	u := newUpstream(t)
	putRecord(u, "published/2025", "CVE-2025-21703")
	u.commit("one record")
	st := openStore(t, filepath.Join(t.TempDir(), "tuxtape.db"))
	mirror := filepath.Join(t.TempDir(), "vulns.git")
	work := filepath.Dir(u.dir)
	t.Chdir(work)
	src := filepath.Base(u.dir)

	sum, err := cvesync.Run(ctx, st, cvesync.Options{Source: src, MirrorDir: mirror})
	if err != nil || sum.Added != 1 {
		t.Fatalf("first Run(%q) = %+v, %v, want one added", src, sum, err)
	}
	if sum.Source != u.dir {
		t.Errorf("first Run(%q) reports source %q, want %q", src, sum.Source, u.dir)
	}
	putRecord(u, "published/2024", "CVE-2024-26581")
	u.commit("another")
	sum, err = cvesync.Run(ctx, st, cvesync.Options{Source: src, MirrorDir: mirror})
	if err != nil || sum.Mode != "incremental" || sum.Added != 1 {
		t.Fatalf("second Run(%q) = %+v, %v, want one added incrementally", src, sum, err)
	}
	state, err := st.SyncState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if state.Source != u.dir {
		t.Errorf("stored source = %q, want %q", state.Source, u.dir)
	}

	other := t.TempDir()
	t.Chdir(other)
	rel, err := filepath.Rel(other, u.dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := cvesync.Run(ctx, st, cvesync.Options{Source: rel, MirrorDir: mirror}); err != nil || sum.Mode != "up-to-date" {
		t.Errorf("Run(%q) from %s = %+v, %v, want up-to-date", rel, other, sum, err)
	}
}

// TestOptionSource: a source git would read as an option is refused
// before git runs, and the store is left alone.
func TestOptionSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	st := openStore(t, filepath.Join(dir, "tuxtape.db"))
	src := "--upload-pack=touch " + marker
	for _, noFetch := range []bool{false, true} {
		_, err := cvesync.Run(ctx, st, cvesync.Options{Source: src, MirrorDir: filepath.Join(dir, "vulns.git"), NoFetch: noFetch})
		if err == nil || !strings.Contains(err.Error(), `"-"`) {
			t.Errorf("Run(%q, no-fetch %v) = %v, want a refusal", src, noFetch, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("Run(%q) ran the upload pack", src)
	}
	if state, err := st.SyncState(ctx); err != nil || state.Commit != "" {
		t.Errorf("store after a refused source: %+v, %v, want empty", state, err)
	}
}
