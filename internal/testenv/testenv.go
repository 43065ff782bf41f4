// Package testenv finds the real test assets (the CNA data bundle, a
// PostgreSQL server) for tests, and fails loudly in CI when they are missing
// instead of skipping.
package testenv

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create test databases
)

// Bundle commits used by tests.
const (
	// BundleHead is the tip of the bundle's cutoff branch (2026-08-19).
	BundleHead = "8ef29ff49a85b14340a5f8e8687380b921dba367"
	// BeforeScoring is just before the CNA scored CVE-2024-26581 (2026-08-03).
	BeforeScoring = "87b1003b5"
)

// RepoRoot is the root of the TuxTape source tree.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Missing fails the test in CI, where every test asset must be there, and
// skips it elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Bundle is the path of the CNA data bundle (TUXTAPE_VULNS_BUNDLE, or
// ../shared/data beside the source tree).
func Bundle(t testing.TB) string {
	t.Helper()
	p := os.Getenv("TUXTAPE_VULNS_BUNDLE")
	if p == "" {
		p = filepath.Join(RepoRoot(), "..", "shared", "data", "vulns-2026-08-19.bundle")
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "CNA data bundle not found at %s (set TUXTAPE_VULNS_BUNDLE): %v", p, err)
	}
	return p
}

// Corpus is the directory of a corpus of real fixes in ../shared/corpus
// beside the source tree (debian-6.1.176, debian-6.12.107).
func Corpus(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(), "..", "shared", "corpus", name)
	if _, err := os.Stat(filepath.Join(p, "patches")); err != nil {
		Missing(t, "corpus %s not found: %v", name, err)
	}
	return p
}

var mirrorOnce sync.Mutex

// Mirror returns a bare mirror of the bundle, cloned once and shared by
// every test run on this machine (it is only read).
func Mirror(t testing.TB) string {
	t.Helper()
	bundle := Bundle(t)
	mirrorOnce.Lock()
	defer mirrorOnce.Unlock()
	sum := sha256.Sum256([]byte(bundle))
	dir := filepath.Join(os.TempDir(), "tuxtape-test-mirror-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "tuxtape-test-mirror-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("git", "clone", "--quiet", "--mirror", bundle, tmp).CombinedOutput()
	if err != nil {
		t.Fatalf("clone %s: %v\n%s", bundle, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	return dir
}

// Checkout returns a directory holding the files of the bundle at
// BundleHead (cve/published/..., scripts/, ...), for tests that read the
// CNA's files as a clone has them. It is unpacked from Mirror once and kept
// in the user cache; it is only read.
func Checkout(t testing.TB) string {
	t.Helper()
	mirror := Mirror(t)
	sum := sha256.Sum256([]byte(Bundle(t)))
	name := "vulns-" + hex.EncodeToString(sum[:6]) + "-" + BundleHead[:12]
	dir, err := CachedDir(name, BundleHead, func(dir string) error {
		t.Logf("unpacking the bundle at %s into %s", BundleHead[:12], dir)
		// git archive reads the shared mirror without writing to it, as a
		// worktree or checkout would (index, worktree metadata).
		archive := exec.Command("git", "--git-dir", mirror, "archive", "--format=tar", BundleHead)
		untar := exec.Command("tar", "-x", "-C", dir)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return err
		}
		untar.Stdin = pipe
		var archiveErr, untarErr strings.Builder
		archive.Stderr, untar.Stderr = &archiveErr, &untarErr
		if err := archive.Start(); err != nil {
			return err
		}
		if err := untar.Run(); err != nil {
			archive.Process.Kill()
			archive.Wait()
			return fmt.Errorf("tar: %v: %s", err, untarErr.String())
		}
		if err := archive.Wait(); err != nil {
			return fmt.Errorf("git archive %s: %v: %s", BundleHead, err, archiveErr.String())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("check out the bundle at %s: %v", BundleHead, err)
	}
	return dir
}

// Backend is a database to run a store test against.
type Backend struct {
	Name string
	DSN  string
}

// Backends returns a fresh, empty SQLite file and, when TUXTAPE_TEST_PG
// points at a server, a fresh PostgreSQL database on it. In CI a missing
// PostgreSQL fails the test.
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{{Name: "sqlite", DSN: filepath.Join(t.TempDir(), "tuxtape.db")}}
	admin := os.Getenv("TUXTAPE_TEST_PG")
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TUXTAPE_TEST_PG is not set: run the tests through scripts/with-postgres (make test)")
		}
		t.Log("TUXTAPE_TEST_PG not set: PostgreSQL backend not tested (make test sets it)")
		return bs
	}
	return append(bs, Backend{Name: "postgres", DSN: PostgresDB(t, admin)})
}

var dbSeq int

// PostgresDB creates an empty database on the server admin points at,
// dropped when the test ends, and returns its DSN.
func PostgresDB(t testing.TB, admin string) string {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dbSeq++
	name := fmt.Sprintf("t%d_%d_", os.Getpid(), dbSeq) + strings.ToLower(strings.NewReplacer("/", "_", "-", "_", " ", "_", "#", "_").Replace(t.Name()))
	if len(name) > 50 {
		sum := sha256.Sum256([]byte(name))
		name = name[:40] + "_" + hex.EncodeToString(sum[:4])
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Fatalf("drop test database: %v", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	i := strings.LastIndex(admin, "/")
	j := strings.Index(admin[i:], "?")
	if j < 0 {
		return admin[:i+1] + name
	}
	return admin[:i+1] + name + admin[i+j:]
}

// PostgresOrSQLite returns a second, fresh database of backend b's kind.
func PostgresOrSQLite(t testing.TB, b Backend) string {
	t.Helper()
	if b.Name == "postgres" {
		return PostgresDB(t, os.Getenv("TUXTAPE_TEST_PG"))
	}
	return filepath.Join(t.TempDir(), "second.db")
}

// BuildTuxtape builds the tuxtape command into dir and returns its path:
// the tests that need the real binary (exit codes, signals, a server and
// its clients as processes) build it through here.
func BuildTuxtape(dir string) (string, error) {
	bin := filepath.Join(dir, "tuxtape")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tuxtape")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tuxtape: %v\n%s", err, out)
	}
	return bin, nil
}
