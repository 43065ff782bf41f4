package klp

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// TestPlanUnitsMissingFile: a fix of a file the kernel source does not
// have is for other source, not code this configuration leaves out.
func TestPlanUnitsMissingFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"fs/isofs/inode.c", "drivers/x/off.c"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("int x;\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := &Kernel{Tree: &ktree.Tree{Dir: dir}, Profile: profile.NewIndex(&profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
		{Source: "fs/isofs/inode.c", Object: "fs/isofs/inode.o", Target: "isofs"},
	}})}
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		file string
		code refusal.Code
		msg  string
	}{
		{"fs/isofs/inode.c", "", ""},
		{"drivers/x/off.c", refusal.NotCompiled, "no unit of this kernel's build compiles or includes drivers/x/off.c"},
		{"drivers/gone/new.c", refusal.FixDoesNotApply, "the kernel source has no drivers/gone/new.c: the fix is for another tree or version"},
	}
	for _, tt := range tests {
		_, err := planUnits(context.Background(), k, []string{tt.file}, log)
		r, _ := AsRefusal(err)
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("planUnits(%s): %v", tt.file, err)
		case tt.code != "" && (r == nil || r.Code != tt.code || !strings.Contains(r.Reason, tt.msg)):
			t.Errorf("planUnits(%s): %v; want %s: %q", tt.file, err, tt.code, tt.msg)
		}
	}
}
