package vulns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdataFile reads testdata/name: real files from the kernel CNA's
// repository (see testdata/README.md).
func testdataFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testdataRecord gathers testdata/<id>.* keyed by extension, as Assemble
// wants them.
func testdataRecord(t testing.TB, id string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", id+".*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata for %s: %v", id, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		ext := strings.TrimPrefix(filepath.Base(p), id+".")
		files[ext] = testdataFile(t, filepath.Base(p))
	}
	return files
}

// testdataGlob lists testdata file names matching pattern, for fuzz seeds.
func testdataGlob(t testing.TB, pattern string) [][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata matching %s: %v", pattern, err)
	}
	var out [][]byte
	for _, p := range paths {
		out = append(out, testdataFile(t, filepath.Base(p)))
	}
	return out
}
