package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/server/store"
)

// TestOpenRefusesOtherSchemes: a DSN for another database, or a misspelt
// postgres://, must be refused rather than become a SQLite file named after
// it.
func TestOpenRefusesOtherSchemes(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		hide string // must not appear in the error
	}{
		{dsn: "mysql://x"},
		{dsn: "mysql://root:hunter2@db/tuxtape", hide: "hunter2"},
		{dsn: "postgress://tuxtape:hunter2@127.0.0.1/x", hide: "hunter2"},
		{dsn: "postgre://127.0.0.1/x"},
		{dsn: "sqlite://tuxtape.db"},
		{dsn: "https://example.org/db"},
		{dsn: "POSTGRES+ssl://h/x"},
		{dsn: "file:tuxtape.db"},
		{dsn: "file:///tmp/tuxtape.db?mode=ro"},
		{dsn: "postgres:/127.0.0.1/x"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			st, err := store.Open(context.Background(), tc.dsn)
			if err == nil {
				st.Close()
				t.Fatalf("Open(%q) succeeded", tc.dsn)
			}
			if !errors.Is(err, store.ErrUnsupportedDSN) {
				t.Errorf("Open(%q) error = %v, want ErrUnsupportedDSN", tc.dsn, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "SQLite file path") || !strings.Contains(msg, "postgres://") {
				t.Errorf("error %q should say what is accepted", msg)
			}
			if tc.hide != "" && strings.Contains(msg, tc.hide) {
				t.Errorf("error %q shows the password", msg)
			} else if tc.hide == "" && !strings.Contains(msg, tc.dsn) {
				t.Errorf("error %q should name the DSN", msg)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("Open(%q) created %v", tc.dsn, ents[0].Name())
			}
		})
	}
}

// TestOpenAcceptsPaths: what is not a URL stays a SQLite path, including
// the "sqlite:" prefix and names with a colon in them.
func TestOpenAcceptsPaths(t *testing.T) {
	for _, tc := range []struct{ dsn, file string }{
		{"tuxtape.db", "tuxtape.db"},
		{"sub/dir/tuxtape.db", "sub/dir/tuxtape.db"},
		{"sqlite:prefixed.db", "prefixed.db"},
		{"odd:name.db", "odd:name.db"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			st, err := store.Open(context.Background(), tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
				t.Errorf("Open(%q): %v", tc.dsn, err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pw@h/db", "postgres://u:xxx@h/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?sslmode=disable&password=pw", "postgres://h/db?sslmode=disable&password=xxx"},
		{"postgres://h/db?password=pw&sslmode=disable", "postgres://h/db?password=xxx&sslmode=disable"},
		{"postgres://u:p@w@h/db", "postgres://u:xxx@h/db"},
		{"/var/lib/tuxtape/tuxtape.db", "/var/lib/tuxtape/tuxtape.db"},
	} {
		if got := store.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
