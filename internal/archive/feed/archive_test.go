package feed_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
)

// archive is a real repository served on loopback by a server that can
// be told to serve other bytes for a path: the malicious mirror.
type archive struct {
	t     *testing.T
	r     *repo.Repo
	clock *clock
	o     feed.Options // a client with its own cache

	mu       sync.Mutex
	override map[string][]byte // URL path → body served instead
	endless  map[string]bool   // URL path → an endless body
}

func newArchive(t *testing.T, o repo.InitOptions) *archive {
	t.Helper()
	r, c := newRepo(t, o)
	a := &archive{t: t, r: r, clock: c, override: map[string][]byte{}, endless: map[string]bool{}}
	files := http.FileServer(http.Dir(r.PublicDir()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a.mu.Lock()
		body, over := a.override[req.URL.Path]
		endless := a.endless[req.URL.Path]
		a.mu.Unlock()
		switch {
		case endless:
			chunk := make([]byte, 32<<10)
			for i := range chunk {
				chunk[i] = ' '
			}
			for req.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case over:
			w.Write(body)
		default:
			files.ServeHTTP(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(r.PublicDir(), "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	a.o = feed.Options{MetadataURL: srv.URL + "/metadata/", TargetsURL: srv.URL + "/targets/", Root: root, Dir: t.TempDir(), HTTPClient: srv.Client()}
	return a
}

// serve makes the server answer path (under /metadata/ or /targets/) with body.
func (a *archive) serve(path string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.override[path] = body
}

func (a *archive) serveEndless(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.endless[path] = true
}

// published reads a file of the repository's public directory.
func (a *archive) published(rel string) []byte {
	a.t.Helper()
	b, err := os.ReadFile(filepath.Join(a.r.PublicDir(), rel))
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

// cache is the client's metadata cache, file by file.
func (a *archive) cache() map[string]string {
	a.t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(filepath.Join(a.o.Dir, "metadata"))
	if err != nil {
		a.t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(a.o.Dir, "metadata", e.Name()))
		if err != nil {
			a.t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// version is the version of a role in the client's cache.
func (a *archive) cachedVersion(role string) int64 {
	a.t.Helper()
	p := filepath.Join(a.o.Dir, "metadata", role+".json")
	switch role {
	case metadata.ROOT:
		m, err := metadata.Root().FromFile(p)
		if err != nil {
			a.t.Fatal(err)
		}
		return m.Signed.Version
	case metadata.TIMESTAMP:
		m, err := metadata.Timestamp().FromFile(p)
		if err != nil {
			a.t.Fatal(err)
		}
		return m.Signed.Version
	}
	a.t.Fatalf("cachedVersion(%s)", role)
	return 0
}

func (a *archive) signers(role string) []repo.Signer {
	a.t.Helper()
	s, err := repo.FileKeys{Dir: filepath.Join(a.r.Dir(), "keys")}.Signers(context.Background(), role)
	if err != nil || len(s) == 0 {
		a.t.Fatalf("signers(%s) = %v, %v", role, s, err)
	}
	return s
}

func signAll[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], signers []repo.Signer) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(b))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

// resign plays a holder of the targets, snapshot and timestamp keys (a
// compromised or buggy repository): it publishes, correctly signed, the
// current targets as mutate leaves them.
func (a *archive) resign(mutate func(*metadata.Metadata[metadata.TargetsType])) {
	t := a.t
	t.Helper()
	dir := filepath.Join(a.r.PublicDir(), "metadata")
	ts, err := metadata.Timestamp().FromFile(filepath.Join(dir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := metadata.Snapshot().FromFile(filepath.Join(dir, fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := metadata.Targets().FromFile(filepath.Join(dir, fmt.Sprintf("%d.targets.json", sn.Signed.Meta["targets.json"].Version)))
	if err != nil {
		t.Fatal(err)
	}
	mutate(tg)
	tg.Signed.Version++
	b := signAll(t, tg, a.signers(metadata.TARGETS))
	write(t, filepath.Join(dir, fmt.Sprintf("%d.targets.json", tg.Signed.Version)), b)
	sn.Signed.Meta["targets.json"] = metaFile(tg.Signed.Version, b)
	sn.Signed.Version++
	b = signAll(t, sn, a.signers(metadata.SNAPSHOT))
	write(t, filepath.Join(dir, fmt.Sprintf("%d.snapshot.json", sn.Signed.Version)), b)
	ts.Signed.Meta["snapshot.json"] = metaFile(sn.Signed.Version, b)
	ts.Signed.Version++
	write(t, filepath.Join(dir, "timestamp.json"), signAll(t, ts, a.signers(metadata.TIMESTAMP)))
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// refused checks an attack's outcome: an ErrVerify-class error, no
// result, and the client's cache as it was before.
func refused(t *testing.T, what string, rel any, err error, before, after map[string]string) {
	t.Helper()
	if !errors.Is(err, feed.ErrVerify) {
		t.Errorf("%s: error = %v, want ErrVerify", what, err)
	}
	if errors.Is(err, feed.ErrNetwork) || errors.Is(err, feed.ErrNoPatches) {
		t.Errorf("%s: error = %v, want only ErrVerify", what, err)
	}
	switch v := rel.(type) {
	case *feed.Release:
		if v != nil {
			t.Errorf("%s: returned %+v with the error", what, *v)
		}
	case string:
		if v != "" {
			t.Errorf("%s: returned path %q with the error", what, v)
		}
	case []feed.Release:
		if v != nil {
			t.Errorf("%s: returned %d releases with the error", what, len(v))
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s: the cache holds %d files, want the %d it had", what, len(after), len(before))
	}
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s: the cache's %s changed", what, name)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%s: refused: %v", what, err)
}

func (a *archive) latest(kernel, ring string) *feed.Release {
	a.t.Helper()
	rel, err := feed.Latest(context.Background(), a.o, kernel, ring)
	if err != nil {
		a.t.Fatalf("Latest(%s, %s): %v", kernel, ring, err)
	}
	return rel
}

func hasOnly(s []string, want ...string) bool {
	return strings.Join(s, ",") == strings.Join(want, ",")
}

// age makes the repository sign as if it were d ago.
func (a *archive) age(d time.Duration) { a.clock.t = time.Now().Add(-d) }

func feedSHA(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:])
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
