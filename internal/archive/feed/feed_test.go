package feed_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/archive/repo/repotest"
)

const (
	kernelA = "6.1.0-50-cloud-amd64"
	kernelB = "6.12.33+deb13-amd64"
)

// clock is a settable time for the repository, so tests can age metadata.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRepo(t *testing.T, o repo.InitOptions) (*repo.Repo, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	o.Now = c.now
	r, err := repo.Init(context.Background(), filepath.Join(t.TempDir(), "archive"), o)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return r, c
}

func publish(t *testing.T, r *repo.Repo, kernel, ring string, cves ...string) *feed.Release {
	t.Helper()
	rel, err := r.Publish(context.Background(), repo.PublishOptions{
		Module:   repotest.Module(t, "livepatch_cves", kernel, "srcversion="+time.Now().Format(time.RFC3339Nano)),
		Kernel:   kernel,
		PatchSet: "cves",
		CVEs:     cves,
		Ring:     ring,
	})
	if err != nil {
		t.Fatalf("Publish(%s): %v", kernel, err)
	}
	return rel
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, repo.InitOptions{})
	mod := repotest.Module(t, "livepatch_cves", kernelA, "srcversion=1")
	want, _ := os.ReadFile(mod)
	pub, err := r.Publish(ctx, repo.PublishOptions{Module: mod, Kernel: kernelA, PatchSet: "cves", CVEs: []string{"CVE-2024-26581", "cve-2023-0001"},
		VetReport: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	o, _ := repotest.Serve(t, r.PublicDir())

	got, err := feed.Latest(ctx, o, kernelA, "canary")
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	wantRel := feed.Release{
		Target: kernelA + "/cves-1.ko", Kernel: kernelA, Module: "livepatch_cves", PatchSet: "cves", Version: 1,
		CVEs: []string{"CVE-2023-0001", "CVE-2024-26581"}, Rings: []string{"canary"},
		VetReport: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Length:    int64(len(want)), SHA256: pub.SHA256,
	}
	if !equalRelease(*got, wantRel) {
		t.Errorf("Latest = %+v, want %+v", *got, wantRel)
	}
	p, err := feed.Fetch(ctx, o, got)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, want) {
		t.Errorf("Fetch wrote %d bytes, want the module's %d", len(b), len(want))
	}
	// Cached: found again with the server gone.
	o2 := o
	o2.MetadataURL, o2.TargetsURL = "http://127.0.0.1:1/metadata/", "http://127.0.0.1:1/targets/"
	if _, err := feed.Fetch(ctx, o2, got); !errors.Is(err, feed.ErrNetwork) {
		t.Errorf("Fetch with the archive down = %v, want ErrNetwork", err)
	}
	o2.Offline = true
	if p2, err := feed.Fetch(ctx, o2, got); err != nil || p2 != p {
		t.Errorf("Fetch offline = %q, %v, want %q", p2, err, p)
	}
	if _, err := feed.Latest(ctx, o, kernelA, "stable"); !errors.Is(err, feed.ErrNoPatches) {
		t.Errorf("Latest(stable) = %v, want ErrNoPatches", err)
	}
	if _, err := feed.Latest(ctx, o, kernelB, "canary"); !errors.Is(err, feed.ErrNoPatches) {
		t.Errorf("Latest(%s) = %v, want ErrNoPatches", kernelB, err)
	}
}

func equalRelease(a, b feed.Release) bool {
	return a.Target == b.Target && a.Kernel == b.Kernel && a.Module == b.Module && a.PatchSet == b.PatchSet &&
		a.Version == b.Version && slices.Equal(a.CVEs, b.CVEs) && slices.Equal(a.Rings, b.Rings) &&
		a.Replaces == b.Replaces && a.VetReport == b.VetReport && a.Length == b.Length && a.SHA256 == b.SHA256 &&
		a.DowngradeOf == b.DowngradeOf
}
