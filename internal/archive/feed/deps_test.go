package feed_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the feed small enough for the agent on every host: it
// links neither the archive's write side nor anything of the server, the
// builders, the use cases or the front ends.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tuxtape/tuxtape/internal/archive/feed").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/tuxtape/tuxtape/internal/"
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"archive/repo", "server", "build", "service", "frontend", "analysis"} {
			if dep == mod+banned || strings.HasPrefix(dep, mod+banned+"/") {
				t.Errorf("feed depends on %s", dep)
			}
		}
		if dep == "database/sql" || dep == "os/exec" {
			t.Errorf("feed depends on %s", dep)
		}
	}
}
