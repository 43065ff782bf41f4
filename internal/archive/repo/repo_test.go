package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/archive/repo/repotest"
)

const kernel = "6.1.0-50-cloud-amd64"

func newTestRepo(t *testing.T, o InitOptions) *Repo {
	t.Helper()
	r, err := Init(context.Background(), filepath.Join(t.TempDir(), "archive"), o)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return r
}

func TestPublishRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, InitOptions{})
	good := repotest.Module(t, "livepatch_cves", kernel)
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exec := repotest.ModuleBytes("x", kernel)
	exec[16] = 2 // ET_EXEC
	tests := []struct {
		name    string
		o       PublishOptions
		want    error
		wantMsg string
	}{
		{"not ELF", PublishOptions{Module: file("a.ko", []byte("hello world")), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "not an ELF file"},
		{"compressed", PublishOptions{Module: file("b.ko.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "compressed"},
		{"truncated ELF", PublishOptions{Module: file("c.ko", repotest.ModuleBytes("x", kernel)[:80]), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "ELF"},
		{"executable", PublishOptions{Module: file("d.ko", exec), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "ET_REL"},
		{"missing file", PublishOptions{Module: filepath.Join(dir, "nope.ko"), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "no such file"},
		{"directory", PublishOptions{Module: dir, Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "regular file"},
		{"bad kernel", PublishOptions{Module: good, Kernel: "linux-6.1", PatchSet: "cves"}, ErrInvalid, "kernel release"},
		{"kernel with slash", PublishOptions{Module: good, Kernel: "6.1.0/../../x", PatchSet: "cves"}, ErrInvalid, "kernel release"},
		{"other kernel's module", PublishOptions{Module: good, Kernel: "6.1.0-51-cloud-amd64", PatchSet: "cves"}, ErrInvalid, "built for kernel " + kernel},
		{"bad CVE", PublishOptions{Module: good, Kernel: kernel, PatchSet: "cves", CVEs: []string{"CVE-2024-1"}}, ErrInvalid, "CVE id"},
		{"unknown ring", PublishOptions{Module: good, Kernel: kernel, PatchSet: "cves", Ring: "beta"}, ErrInvalid, "rings are canary, early, stable"},
		{"bad patch set", PublishOptions{Module: good, Kernel: kernel, PatchSet: "a-b"}, ErrInvalid, "patch set"},
		{"bad vet report", PublishOptions{Module: good, Kernel: kernel, PatchSet: "cves", VetReport: "abc"}, ErrInvalid, "vetting report"},
		{"replaces the future", PublishOptions{Module: good, Kernel: kernel, PatchSet: "cves", Replaces: 5}, ErrInvalid, "replaces"},
		{"not a livepatch", PublishOptions{Module: file("e.ko", bytes.Replace(repotest.ModuleBytes("x", kernel), []byte("livepatch=Y"), []byte("livepatch=N"), 1)), Kernel: kernel, PatchSet: "cves"}, ErrInvalid, "not a livepatch"},
	}
	for _, tt := range tests {
		_, err := r.Publish(ctx, tt.o)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%s: Publish = %v, want %v with %q", tt.name, err, tt.want, tt.wantMsg)
		}
	}
	st, err := r.Status(ctx)
	if err != nil || len(st.Kernels) != 0 || st.Roles["targets"].Version != 1 {
		t.Errorf("after refused publishes: Status = %+v, %v, want nothing published", st, err)
	}
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"promote unknown version", func() error { _, err := r.Promote(ctx, kernel, 7, ""); return err }(), ErrNotFound},
		{"revoke unknown version", func() error { _, err := r.Revoke(ctx, kernel, 7); return err }(), ErrNotFound},
		{"promote to unknown ring", func() error { _, err := r.Promote(ctx, kernel, 1, "beta"); return err }(), ErrInvalid},
		{"rotate unknown role", r.RotateKey(ctx, "mirror"), ErrInvalid},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

func TestModuleNameFromFileName(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, InitOptions{})
	b := bytes.Replace(repotest.ModuleBytes("zz", kernel), []byte("name=zz\x00"), []byte("xname=z\x00"), 1)
	p := filepath.Join(t.TempDir(), "livepatch-fix-1.ko")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := r.Publish(ctx, PublishOptions{Module: p, Kernel: kernel, PatchSet: "fix"})
	if err != nil || rel.Module != "livepatch_fix_1" {
		t.Errorf("Publish without name= = %+v, %v, want module livepatch_fix_1", rel, err)
	}
}

func TestKeysArePrivate(t *testing.T) {
	r := newTestRepo(t, InitOptions{Thresholds: map[string]int{"root": 2}})
	n := 0
	filepath.WalkDir(filepath.Join(r.Dir(), "keys"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		if d.IsDir() && fi.Mode().Perm() != 0o700 || !d.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if n != 5 {
		t.Errorf("%d key files, want 5 (2 root, 1 each for the others)", n)
	}
	// Nothing secret is served.
	filepath.WalkDir(r.PublicDir(), func(p string, d os.DirEntry, err error) error {
		if strings.HasSuffix(p, ".pem") {
			t.Errorf("key file %s in the public directory", p)
		}
		return nil
	})
	k, _ := filepath.Glob(filepath.Join(r.Dir(), "keys", "targets", "*.pem"))
	os.Chmod(k[0], 0o644)
	if _, err := LoadKey(k[0]); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadKey(0644 file) = %v, want a refusal", err)
	}
}

func TestInitRefuses(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, InitOptions{})
	if _, err := Init(ctx, r.Dir(), InitOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Init over an archive = %v, want ErrInvalid", err)
	}
	for _, o := range []InitOptions{
		{Rings: []string{"canary", "canary"}},
		{Rings: []string{"Bad Ring"}},
		{Thresholds: map[string]int{"root": 0}},
		{Thresholds: map[string]int{"mirror": 1}},
		{Expiry: Expiries{Timestamp: Duration(30 * 24 * 3600e9)}},
	} {
		if _, err := Init(ctx, filepath.Join(t.TempDir(), "a"), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Init(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	if _, err := Open(t.TempDir(), Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(empty dir) = %v, want ErrNotFound", err)
	}
	unlock, err := lock(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := r.Refresh(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("Refresh while locked = %v, want ErrBusy", err)
	}
}

// failingKeys fails to give the signers of one role, as an HSM that went
// away half-way through a publish.
type failingKeys struct {
	KeyStore
	role string
}

func (f failingKeys) Signers(ctx context.Context, role string) ([]Signer, error) {
	if role == f.role {
		return nil, errors.New("token removed")
	}
	return f.KeyStore.Signers(ctx, role)
}

// TestFailedPublishKeepsThePublishedState: a publish that fails after
// writing the module and targets leaves timestamp.json, and so what
// clients see, as it was; the next publish succeeds.
func TestFailedPublishKeepsThePublishedState(t *testing.T) {
	ctx := context.Background()
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		t.Run(role, func(t *testing.T) {
			r := newTestRepo(t, InitOptions{})
			if _, err := r.Publish(ctx, PublishOptions{Module: repotest.Module(t, "lp", kernel, "v=1"), Kernel: kernel, PatchSet: "cves"}); err != nil {
				t.Fatal(err)
			}
			ts := readFile(t, filepath.Join(r.PublicDir(), "metadata", "timestamp.json"))
			broken, err := Open(r.Dir(), Options{Keys: failingKeys{FileKeys{Dir: filepath.Join(r.Dir(), "keys")}, role}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := broken.Publish(ctx, PublishOptions{Module: repotest.Module(t, "lp", kernel, "v=2"), Kernel: kernel, PatchSet: "cves"}); err == nil || !strings.Contains(err.Error(), "token removed") {
				t.Fatalf("Publish with %s keys gone = %v, want the signer's error", role, err)
			}
			if got := readFile(t, filepath.Join(r.PublicDir(), "metadata", "timestamp.json")); got != ts {
				t.Errorf("timestamp.json changed by a failed publish")
			}
			st, err := r.Status(ctx)
			if err != nil || len(st.Kernels) != 1 || len(st.Kernels[0].Versions) != 1 {
				t.Fatalf("Status after a failed publish = %+v, %v, want v1 alone", st, err)
			}
			rel, err := r.Publish(ctx, PublishOptions{Module: repotest.Module(t, "lp", kernel, "v=3"), Kernel: kernel, PatchSet: "cves"})
			if err != nil || rel.Version != 3 || rel.Replaces != 1 {
				t.Errorf("Publish after the failure = %+v, %v, want v3 (v2 was taken) replacing 1", rel, err)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzReadModinfo: no input makes the ELF reader panic.
func FuzzReadModinfo(f *testing.F) {
	f.Add(repotest.ModuleBytes("livepatch_x", kernel))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		readModinfo(b)
	})
}
