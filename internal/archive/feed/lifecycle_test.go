package feed_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

func TestPromote(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	publish(t, a.r, kernelA, "", "CVE-2024-26581")
	if _, err := feed.Latest(ctx, a.o, kernelA, "early"); !errors.Is(err, feed.ErrNoPatches) {
		t.Fatalf("Latest(early) before promotion = %v, want ErrNoPatches", err)
	}
	for _, want := range [][]string{{"canary", "early"}, {"canary", "early", "stable"}} {
		rel, err := a.r.Promote(ctx, kernelA, 1, "")
		if err != nil {
			t.Fatalf("Promote: %v", err)
		}
		if !hasOnly(rel.Rings, want...) {
			t.Errorf("Promote → rings %v, want %v", rel.Rings, want)
		}
		got := a.latest(kernelA, want[len(want)-1])
		if got.Version != 1 || !hasOnly(got.Rings, want...) {
			t.Errorf("Latest(%s) = v%d %v, want v1 %v", want[len(want)-1], got.Version, got.Rings, want)
		}
	}
	if _, err := a.r.Promote(ctx, kernelA, 1, ""); !errors.Is(err, repo.ErrInvalid) {
		t.Errorf("Promote past the last ring = %v, want ErrInvalid", err)
	}
	// A newer version in canary does not reach stable hosts.
	publish(t, a.r, kernelA, "canary")
	if got := a.latest(kernelA, "stable"); got.Version != 1 {
		t.Errorf("Latest(stable) = v%d, want v1", got.Version)
	}
	if got := a.latest(kernelA, "canary"); got.Version != 2 || got.Replaces != 1 {
		t.Errorf("Latest(canary) = v%d replacing %d, want v2 replacing 1", got.Version, got.Replaces)
	}
	if _, err := a.r.Promote(ctx, kernelA, 2, "stable"); err != nil {
		t.Fatalf("Promote(v2, stable): %v", err)
	}
	if got := a.latest(kernelA, "stable"); got.Version != 2 || !hasOnly(got.Rings, "canary", "early", "stable") {
		t.Errorf("Latest(stable) after promoting v2 = v%d %v", got.Version, got.Rings)
	}
	for _, tt := range []struct {
		version int64
		ring    string
		want    error
	}{{9, "", repo.ErrNotFound}, {2, "nope", repo.ErrInvalid}, {2, "early", repo.ErrInvalid}} {
		if _, err := a.r.Promote(ctx, kernelA, tt.version, tt.ring); !errors.Is(err, tt.want) {
			t.Errorf("Promote(v%d, %q) = %v, want %v", tt.version, tt.ring, err, tt.want)
		}
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	publish(t, a.r, kernelA, "")
	publish(t, a.r, kernelA, "")
	v2 := a.latest(kernelA, "canary")
	if v2.Version != 2 {
		t.Fatalf("Latest = v%d, want v2", v2.Version)
	}
	if _, err := a.r.Revoke(ctx, kernelA, 2); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := a.latest(kernelA, "canary"); got.Version != 1 {
		t.Errorf("Latest after revoking v2 = v%d, want v1", got.Version)
	}
	if p, err := feed.Fetch(ctx, a.o, v2); !errors.Is(err, feed.ErrNoPatches) || p != "" {
		t.Errorf("Fetch(revoked v2) = %q, %v, want ErrNoPatches", p, err)
	}
	if _, err := a.r.Revoke(ctx, kernelA, 2); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("Revoke(v2) again = %v, want ErrNotFound", err)
	}
	// The revoked number is never given again.
	if rel := publish(t, a.r, kernelA, ""); rel.Version != 3 || rel.Replaces != 1 {
		t.Errorf("Publish after revoke = v%d replacing %d, want v3 replacing 1", rel.Version, rel.Replaces)
	}
	vs, err := feed.Versions(ctx, a.o, kernelA)
	if err != nil || len(vs) != 2 || vs[0].Version != 3 || vs[1].Version != 1 {
		t.Errorf("Versions = %+v, %v, want v3, v1", vs, err)
	}
}

func TestDowngradeIsAHigherVersion(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	v1 := publish(t, a.r, kernelA, "stable", "CVE-2024-0001")
	publish(t, a.r, kernelA, "stable", "CVE-2024-0001", "CVE-2024-0002")
	d, err := a.r.Downgrade(ctx, kernelA, 1, "")
	if err != nil {
		t.Fatalf("Downgrade: %v", err)
	}
	got := a.latest(kernelA, "stable")
	if got.Version != 3 || got.SHA256 != v1.SHA256 || got.DowngradeOf != 1 || got.Replaces != 2 || !hasOnly(got.CVEs, "CVE-2024-0001") {
		t.Errorf("Latest after downgrade = %+v, want v3 with v1's module, replacing 2", *got)
	}
	if d.Target != got.Target {
		t.Errorf("Downgrade returned %s, Latest %s", d.Target, got.Target)
	}
	p, err := feed.Fetch(ctx, a.o, got)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if b, _ := os.ReadFile(p); feedSHA(b) != v1.SHA256 {
		t.Errorf("Fetch of the downgrade gave other bytes than v1's")
	}
	// Also from a revoked version (found in older targets).
	if _, err := a.r.Revoke(ctx, kernelA, 1); err != nil {
		t.Fatal(err)
	}
	if d, err := a.r.Downgrade(ctx, kernelA, 1, "canary"); err != nil || d.Version != 4 || d.SHA256 != v1.SHA256 || !hasOnly(d.Rings, "canary") {
		t.Errorf("Downgrade to revoked v1 = %+v, %v", d, err)
	}
	if _, err := a.r.Downgrade(ctx, kernelA, 42, ""); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("Downgrade(42) = %v, want ErrNotFound", err)
	}
}

func TestRotateKey(t *testing.T) {
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		t.Run(role, func(t *testing.T) {
			ctx := context.Background()
			a := newArchive(t, repo.InitOptions{Thresholds: map[string]int{metadata.ROOT: 2}})
			publish(t, a.r, kernelA, "")
			a.latest(kernelA, "canary") // the client now trusts root v1
			before, _ := a.r.Status(ctx)
			if err := a.r.RotateKey(ctx, role); err != nil {
				t.Fatalf("RotateKey(%s): %v", role, err)
			}
			after, _ := a.r.Status(ctx)
			if after.Roles["root"].Version != 2 {
				t.Errorf("root version after rotation = %d, want 2", after.Roles["root"].Version)
			}
			if bytes.Equal([]byte(join(before.Roles[role].Keys)), []byte(join(after.Roles[role].Keys))) {
				t.Errorf("%s keys unchanged: %v", role, after.Roles[role].Keys)
			}
			if n := len(after.Roles[role].Keys); n != len(before.Roles[role].Keys) {
				t.Errorf("%s has %d keys after rotation, want %d", role, n, len(before.Roles[role].Keys))
			}
			publish(t, a.r, kernelA, "")
			if got := a.latest(kernelA, "canary"); got.Version != 2 {
				t.Errorf("Latest after rotation = v%d, want v2", got.Version)
			}
			if v := a.cachedVersion(metadata.ROOT); v != 2 {
				t.Errorf("client's root version = %d, want 2 (it must follow the rotation)", v)
			}
			// A new client holding only 1.root.json follows too.
			fresh := a.o
			fresh.Dir = t.TempDir()
			if _, err := feed.Latest(ctx, fresh, kernelA, "canary"); err != nil {
				t.Errorf("Latest from a new client with root v1: %v", err)
			}
			// The old key no longer signs for the role.
			if keys, _ := (repo.FileKeys{Dir: a.r.Dir() + "/keys"}).Signers(ctx, role); len(keys) != len(after.Roles[role].Keys) {
				t.Errorf("%d %s keys in the key store, want only the %d new", len(keys), role, len(after.Roles[role].Keys))
			}
		})
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for _, x := range s {
		b.WriteString(x + ",")
	}
	return b.String()
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	publish(t, a.r, kernelA, "")
	// Signed 5 hours ago: 1 hour of the 6 left, more than half gone for
	// nothing but the timestamp.
	a.age(5 * time.Hour)
	if _, err := a.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	a.latest(kernelA, "canary")
	tsBefore := a.cachedVersion(metadata.TIMESTAMP)
	a.age(0)
	got, err := a.r.Refresh(ctx)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if !hasOnly(got.Roles, "timestamp") || time.Until(got.Timestamp) < 5*time.Hour {
		t.Errorf("Refresh = %+v, want the timestamp alone renewed for 6h", got)
	}
	a.latest(kernelA, "canary")
	if v := a.cachedVersion(metadata.TIMESTAMP); v != tsBefore+1 {
		t.Errorf("client's timestamp version = %d, want %d", v, tsBefore+1)
	}
	// 20 days on, targets (30 days) has less than half its life left.
	a.clock.t = time.Now().Add(20 * 24 * time.Hour)
	got, err = a.r.Refresh(ctx)
	if err != nil || !hasOnly(got.Roles, "targets", "snapshot", "timestamp") {
		t.Errorf("Refresh 20 days on = %+v, %v, want targets, snapshot, timestamp", got, err)
	}
	// 200 days on, root (a year) is due too, and its keys are here.
	a.clock.t = time.Now().Add(200 * 24 * time.Hour)
	got, err = a.r.Refresh(ctx)
	if err != nil || !hasOnly(got.Roles, "root", "targets", "snapshot", "timestamp") {
		t.Errorf("Refresh 200 days on = %+v, %v, want every role", got, err)
	}
	a.latest(kernelA, "canary")
	if v := a.cachedVersion(metadata.ROOT); v != 2 {
		t.Errorf("client's root version after the root's renewal = %d, want 2", v)
	}
}

// TestRotateRootTwice: a host that slept through two root rotations
// walks the chain 1 → 2 → 3.
func TestRotateRootTwice(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	publish(t, a.r, kernelA, "")
	a.latest(kernelA, "canary")
	for range 2 {
		if err := a.r.RotateKey(ctx, metadata.ROOT); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.r.RotateKey(ctx, metadata.TIMESTAMP); err != nil {
		t.Fatal(err)
	}
	a.latest(kernelA, "canary")
	if v := a.cachedVersion(metadata.ROOT); v != 4 {
		t.Errorf("client's root version = %d, want 4", v)
	}
}

func TestOfflineUsesTheCache(t *testing.T) {
	ctx := context.Background()
	a := newArchive(t, repo.InitOptions{})
	off := a.o
	off.Offline = true
	if _, err := feed.Latest(ctx, off, kernelA, "canary"); !errors.Is(err, feed.ErrNotCached) {
		t.Errorf("Latest offline before any refresh = %v, want ErrNotCached", err)
	}
	// Signed 7 hours ago: the timestamp expired an hour ago, as after a
	// host was down for a while.
	a.age(7 * time.Hour)
	publish(t, a.r, kernelA, "")
	a.age(0)
	if _, err := a.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	rel := a.latest(kernelA, "canary")
	p, err := feed.Fetch(ctx, a.o, rel)
	if err != nil {
		t.Fatal(err)
	}
	a.age(7 * time.Hour)
	if _, err := a.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Expired metadata online is refused, the cache is kept...
	if _, err := feed.Latest(ctx, a.o, kernelA, "canary"); !errors.Is(err, feed.ErrVerify) {
		t.Fatalf("Latest with an expired timestamp = %v, want ErrVerify", err)
	}
	// ...and offline still re-applies what was verified.
	got, err := feed.Latest(ctx, off, kernelA, "canary")
	if err != nil || got.SHA256 != rel.SHA256 {
		t.Fatalf("Latest offline = %v, %v", got, err)
	}
	if p2, err := feed.Fetch(ctx, off, got); err != nil || p2 != p {
		t.Errorf("Fetch offline = %q, %v, want %q", p2, err, p)
	}
}

func TestRealModule(t *testing.T) {
	ctx := context.Background()
	ko, kernel := kernelenv.Module(t)
	a := newArchive(t, repo.InitOptions{})
	if _, err := a.r.Publish(ctx, repo.PublishOptions{Module: ko, Kernel: kernel, PatchSet: "cves", CVEs: []string{"CVE-2024-26581"}}); !errors.Is(err, repo.ErrInvalid) {
		t.Errorf("Publish(%s, a plain module) = %v, want ErrInvalid", ko, err)
	}
	if _, err := a.r.Publish(ctx, repo.PublishOptions{Module: ko, Kernel: kernelB, PatchSet: "cves", AllowPlainModule: true}); !errors.Is(err, repo.ErrInvalid) {
		t.Errorf("Publish(%s for %s, built for %s) = %v, want ErrInvalid", ko, kernelB, kernel, err)
	}
	pub, err := a.r.Publish(ctx, repo.PublishOptions{Module: ko, Kernel: kernel, PatchSet: "cves", AllowPlainModule: true})
	if err != nil {
		t.Fatalf("Publish(%s): %v", ko, err)
	}
	got := a.latest(kernel, "canary")
	if got.Module != pub.Module || got.Module == "" {
		t.Errorf("Latest module %q, published %q", got.Module, pub.Module)
	}
	p, err := feed.Fetch(ctx, a.o, got)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(ko)
	if b, _ := os.ReadFile(p); !bytes.Equal(b, want) {
		t.Errorf("Fetch gave other bytes than %s", ko)
	}
	t.Logf("%s: module %s, %d bytes", ko, got.Module, got.Length)
}
