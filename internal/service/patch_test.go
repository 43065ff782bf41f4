package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/profile"
)

func TestGoalBase(t *testing.T) {
	ix := profile.NewIndex(&profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
		{Source: "fs/isofs/inode.c", Object: "fs/isofs/inode.o", Target: "isofs"},
		{Source: "kernel/audit.c", Object: "kernel/audit.o", Target: "vmlinux"},
	}})
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
		if got := GoalBase(ix, diff(tt.files...)); got != tt.want {
			t.Errorf("GoalBase(%v) = %v, want %v", tt.files, got, tt.want)
		}
	}
	static := profile.NewIndex(&profile.Profile{Kind: profile.KindStatic, Units: []profile.Unit{
		{Source: "fs/isofs/inode.c", Object: "fs/isofs/inode.o", Target: "isofs"},
		{Source: "drivers/x/guess.c", Object: "drivers/x/guess.o", Target: "x", Possible: true},
	}})
	if !GoalBase(static, diff("fs/isofs/inode.c")) {
		t.Error("GoalBase(static profile, a compiled .c) = false, want true")
	}
	if GoalBase(static, diff("drivers/x/guess.c")) {
		t.Error("GoalBase(static profile, a unit it only guessed) = true, want false")
	}
	if GoalBase(nil, diff("fs/isofs/inode.c")) {
		t.Error("GoalBase without a profile = true, want false")
	}
}

func TestNewRevisionBuildMachinery(t *testing.T) {
	cfix := "--- a/fs/isofs/inode.c\n+++ b/fs/isofs/inode.c\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n"
	tests := []struct {
		name, diff string
		allow      bool
		refused    string // the path named, "" when taken
	}{
		{"a C file", cfix, false, ""},
		{"a Makefile", "--- a/fs/isofs/Makefile\n+++ b/fs/isofs/Makefile\n@@ -1,1 +1,1 @@\n-obj-y += a.o\n+obj-y += a.o $(shell touch /tmp/x)\n", false, "fs/isofs/Makefile"},
		{"Kconfig", "--- a/fs/Kconfig\n+++ b/fs/Kconfig\n@@ -1,1 +1,1 @@\n-a\n+b\n", false, "fs/Kconfig"},
		{"a script kbuild runs, beside C", cfix + "--- a/scripts/link-vmlinux.sh\n+++ b/scripts/link-vmlinux.sh\n@@ -1,1 +1,1 @@\n-a\n+b\n", false, "scripts/link-vmlinux.sh"},
		{"a Makefile, allowed", "--- a/fs/isofs/Makefile\n+++ b/fs/isofs/Makefile\n@@ -1,1 +1,1 @@\n-a\n+b\n", true, ""},
	}
	for _, tt := range tests {
		_, err := newRevision([]byte(tt.diff), "test", tt.allow, Actor{})
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.refused != "" && (!IsInvalid(err) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "--allow-build-changes")):
			t.Errorf("%s: %v; want a refusal naming %s", tt.name, err, tt.refused)
		}
	}
}
