package klp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the generator a library the server and builders can call:
// it must not reach into the store, the CLI or the sync.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tuxtape/tuxtape/internal/klp").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/internal/store", "/internal/cli", "/internal/cvesync", "/cmd/"} {
			if strings.Contains(dep, "github.com/tuxtape/tuxtape"+banned) {
				t.Errorf("klp imports %s", dep)
			}
		}
	}
}
