package archivefeed

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tuxtape/tuxtape/internal/agent"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/archive/repo/repotest"
)

const kernel = "6.1.0-50-cloud-amd64"

// TestRealArchive: versions and modules come from a real signed archive
// (internal/archive/repo) over HTTP, and from the cache alone afterwards.
func TestRealArchive(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, t.TempDir(), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o, srv := repotest.Serve(t, r.PublicDir())
	f := &Feed{Options: o}
	if _, err := f.Versions(ctx, kernel, false); !errors.Is(err, agent.ErrNoPatches) {
		t.Fatalf("Versions of an empty archive: %v, want ErrNoPatches", err)
	}
	for i, ring := range []string{"stable", "canary"} {
		if _, err := r.Publish(ctx, repo.PublishOptions{Module: repotest.Module(t, "tt_v"+string(rune('1'+i)), kernel), Kernel: kernel,
			PatchSet: "fix", CVEs: []string{"CVE-2026-0001"}, Ring: ring}); err != nil {
			t.Fatal(err)
		}
	}
	rels, err := f.Versions(ctx, kernel, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 || rels[0].Version != 2 || rels[0].Module != "tt_v2" || rels[1].Module != "tt_v1" {
		t.Fatalf("Versions = %+v, want 2 (tt_v2), 1 (tt_v1)", rels)
	}
	if c := agent.Choose(rels, "stable", nil); c == nil || c.Version != 1 {
		t.Errorf("Choose(stable) = %+v, want version 1", c)
	}
	path, err := f.Fetch(ctx, rels[1], false)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || len(b) == 0 {
		t.Fatalf("fetched %s: %v", path, err)
	}
	// The archive goes away: the cache still answers offline (boot).
	srv.Close()
	if _, err := f.Versions(ctx, kernel, false); err == nil {
		t.Error("Versions online with the archive down: no error")
	}
	off, err := f.Versions(ctx, kernel, true)
	if err != nil || len(off) != 2 {
		t.Fatalf("Versions offline = %+v, %v", off, err)
	}
	if p, err := f.Fetch(ctx, off[1], true); err != nil || p != path {
		t.Errorf("Fetch offline = %q, %v; want the cached %q", p, err, path)
	}
	if _, err := f.Fetch(ctx, off[0], true); err == nil {
		t.Error("Fetch offline of a version never downloaded: no error")
	}
	// A tampered cached module fails verification, as the agent's class.
	if err := os.WriteFile(path, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := f.Fetch(ctx, off[1], true); err == nil {
		t.Errorf("Fetch offline of a tampered module = %q, want an error", p)
	}
}
