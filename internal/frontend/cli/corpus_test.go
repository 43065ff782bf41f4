package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

func TestGoalBase(t *testing.T) {
	k := &klp.Kernel{Profile: profile.NewIndex(&profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
		{Source: "fs/isofs/inode.c", Object: "fs/isofs/inode.o", Target: "isofs"},
		{Source: "kernel/audit.c", Object: "kernel/audit.o", Target: "vmlinux"},
	}})}
	dir := t.TempDir()
	diff := func(files ...string) string {
		var b strings.Builder
		for _, f := range files {
			b.WriteString("--- a/" + f + "\n+++ b/" + f + "\n@@ -1 +1 @@\n-a\n+b\n")
		}
		p := filepath.Join(dir, strings.ReplaceAll(strings.Join(files, "+"), "/", "_")+".patch")
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		files []string
		want  bool
	}{
		{[]string{"fs/isofs/inode.c"}, true},
		{[]string{"fs/isofs/inode.c", "kernel/audit.c"}, true},
		{[]string{"fs/isofs/inode.c", "fs/udf/inode.c"}, false}, // partly compiled
		{[]string{"kernel/audit.c", "include/linux/audit.h"}, false},
		{[]string{"net/bluetooth/hci_event.c"}, false},
	}
	for _, tt := range tests {
		if got := goalBase(k, diff(tt.files...)); got != tt.want {
			t.Errorf("goalBase(%v) = %v, want %v", tt.files, got, tt.want)
		}
	}
	if goalBase(&klp.Kernel{}, diff("fs/isofs/inode.c")) {
		t.Error("goalBase without a profile = true, want false")
	}
}

func TestPrintCorpusSummary(t *testing.T) {
	entries := []CorpusEntry{
		{ID: "A", Class: ClassLoaded, Objects: []string{"vmlinux", "vmlinux"}, Seconds: 10, Base: true},
		{ID: "B", Class: ClassLoaded, Objects: []string{"isofs"}, Seconds: 20, Base: true},
		{ID: "C", Class: ClassNotLivepatchable, Reason: "changed data", Base: true},
		{ID: "D", Class: ClassFixIncomplete, Reason: "x.c:1: undeclared", Base: true},
		{ID: "E", Class: ClassNotCompiled},
		{ID: "F", Class: ClassVMFailed, Seconds: 40},
	}
	var out bytes.Buffer
	printCorpus(&Globals{Stdout: &out}, entries, true)
	s := out.String()
	for _, want := range []string{
		"A  ", "vmlinux  ", // objects listed once
		"median build time of built modules: 20.0s (3 modules)",
		"fixes that change only .c files this kernel compiles (real build profile): 4",
		"loaded, transitioned, clean:           2   50.0%",
		"fix does not compile:                  1   25.0%",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "vmlinux,vmlinux") {
		t.Errorf("objects repeated:\n%s", s)
	}
}
