package ktree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/sandbox"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// needSandbox skips where no sandbox can be made (no root, no
// unprivileged user namespaces), saying why.
func needSandbox(t *testing.T) {
	t.Helper()
	if err := sandbox.Available(context.Background()); err != nil {
		t.Skipf("cannot confine the compile here: %v", err)
	}
}

const goodConfig = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.176 Kernel Configuration\n#\nCONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"\nCONFIG_64BIT=y\nCONFIG_LIVEPATCH=y\n"

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, version, err string
	}{
		{"good", goodConfig, "6.1.176", ""},
		{"distro base version", strings.Replace(goodConfig, "6.1.176", "6.1.0", 1), "6.1.176", ""},
		{"other version", strings.Replace(goodConfig, "6.1.176", "6.6.30", 1), "6.1.176", "Linux 6.6.30"},
		{"other arch", strings.Replace(goodConfig, "Linux/x86", "Linux/arm64", 1), "6.1.176", "arm64"},
		{"no header", "CONFIG_64BIT=y\n", "6.1.176", "header"},
		{"no livepatch", strings.Replace(goodConfig, "CONFIG_LIVEPATCH=y", "# CONFIG_LIVEPATCH is not set", 1), "6.1.176", "CONFIG_LIVEPATCH"},
		{"32-bit", strings.Replace(goodConfig, "CONFIG_64BIT=y", "# CONFIG_64BIT is not set", 1), "6.1.176", "64-bit"},
	} {
		err := checkConfig([]byte(tc.cfg), tc.version, true)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: checkConfig = %v, want nil", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: checkConfig = %v, want ErrConfigMismatch mentioning %q", tc.name, err, tc.err)
		}
	}
}

func TestCheckCompiler(t *testing.T) {
	ctx := context.Background()
	if _, err := CheckCompiler(ctx, []byte("CONFIG_64BIT=y\n")); !errors.Is(err, ErrConfigMismatch) {
		t.Errorf("no CONFIG_CC_VERSION_TEXT: %v", err)
	}
	if _, err := CheckCompiler(ctx, []byte(`CONFIG_CC_VERSION_TEXT="tuxtape-no-such-cc (x) 1.0"`)); !errors.Is(err, ErrCompilerMismatch) || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("missing compiler: %v", err)
	}
	out, err := exec.Command("gcc", "--version").Output()
	if err != nil {
		t.Skip("no gcc")
	}
	have, _, _ := strings.Cut(string(out), "\n")
	if cc, err := CheckCompiler(ctx, []byte(`CONFIG_CC_VERSION_TEXT="`+have+`"`)); err != nil || cc != "gcc" {
		t.Errorf("matching compiler: %q, %v", cc, err)
	}
	other := strings.Replace(have, "gcc", "gcc", 1) + " (patched)"
	if _, err := CheckCompiler(ctx, []byte(`CONFIG_CC_VERSION_TEXT="`+other+`"`)); !errors.Is(err, ErrCompilerMismatch) {
		t.Errorf("other gcc build: %v, want ErrCompilerMismatch", err)
	}
}

func TestWorkspaceApply(t *testing.T) {
	for _, overlay := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "overlay"}[overlay], func(t *testing.T) {
			testWorkspace(t, overlay)
		})
	}
}

// testWorkspace applies fixes in a workspace and compiles in it, with
// the tree's own stale, newer object in the way, which the workspace must
// not take for its own.
func testWorkspace(t *testing.T, overlay bool) {
	if !overlay {
		if sandbox.Rootless() {
			t.Skip("rootless: a workspace copy needs root (the job would own the tree's hard-linked files)")
		}
		t.Setenv("TUXTAPE_WORKSPACE_OVERLAY", "0")
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := "int a;\nint b;\nint c;\n"
	if err := os.WriteFile(filepath.Join(src, "fs", "x.c"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte("%.o: %.c\n\t$(CC) -c -o $@ $<\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(src, "fs", "x.o")
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(stale, future, future); err != nil {
		t.Fatal(err)
	}
	tree := &Tree{Dir: src, CC: "gcc"}
	parent := t.TempDir()
	if overlay && !canOverlay(context.Background(), parent) {
		t.Skip("cannot mount an overlay here (needs root, and an upper layer not on an overlay)")
	}
	ws, err := tree.Workspace(context.Background(), parent)
	if err != nil {
		t.Fatal(err)
	}
	if (ws.base != "") != overlay {
		t.Fatalf("workspace overlay = %v, want %v", ws.base != "", overlay)
	}
	defer func() {
		if err := ws.Remove(); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("Remove left %v in %s", ents, parent)
		}
	}()
	good := "--- a/fs/x.c\n+++ b/fs/x.c\n@@ -1,3 +1,3 @@\n int a;\n-int b;\n+long b;\n int c;\n"
	files, err := ws.Apply(context.Background(), []byte(good))
	if err != nil || len(files) != 1 || files[0] != "fs/x.c" {
		t.Fatalf("Apply = %v, %v", files, err)
	}
	if data, _ := os.ReadFile(filepath.Join(src, "fs", "x.c")); string(data) != orig {
		t.Errorf("patching the workspace changed the prepared tree: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(ws.Dir, "fs", "x.c")); !strings.Contains(string(data), "long b;") {
		t.Errorf("the workspace's fs/x.c = %q, want the fix applied", data)
	}
	if _, err := exec.LookPath("gcc"); err == nil {
		paths, err := ws.Compile(context.Background(), "", "fs/x.o")
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		if obj, _ := os.ReadFile(paths[0]); len(obj) < 4 || string(obj[1:4]) != "ELF" {
			t.Errorf("Compile made %s = %q…, want an object compiled from the fixed source", paths[0], obj[:min(len(obj), 8)])
		}
		if data, _ := os.ReadFile(stale); string(data) != "stale" {
			t.Errorf("compiling in the workspace changed the tree's object: %q", data)
		}
	}
	bad := "--- a/fs/x.c\n+++ b/fs/x.c\n@@ -1,3 +1,3 @@\n int a;\n-int zzz;\n+int q;\n int c;\n"
	if _, err := ws.Apply(context.Background(), []byte(bad)); err == nil || !strings.Contains(err.Error(), "Hunk #1 FAILED") || !strings.Contains(err.Error(), "x.c") {
		t.Errorf("Apply(non-applying fix) = %v, want patch's words naming the file and hunk", err)
	}
	for _, d := range []string{"", "not a diff\n", "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n"} {
		if _, err := ws.Apply(context.Background(), []byte(d)); err == nil {
			t.Errorf("Apply(%q) succeeded", d)
		}
	}
}

// TestWorkspaceNoNetwork: a fix's Makefile runs in the workspace's compile,
// which has no network: a connection to a listener on this machine fails,
// and the listener hears nothing.
func TestWorkspaceNoNetwork(t *testing.T) {
	needSandbox(t)
	ln := testenv.Listen(t)
	src := t.TempDir()
	port := ln.Port
	mk := fmt.Sprintf("x.o:\n\tbash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' && echo connected > $@ || echo refused > $@\n", port)
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := (&Tree{Dir: src, CC: "gcc"}).Workspace(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Remove()
	paths, err := ws.Compile(context.Background(), "", "x.o")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := os.ReadFile(paths[0]); strings.TrimSpace(string(out)) != "refused" {
		t.Errorf("the Makefile's connection: %q, want refused", out)
	}
	if ln.Heard(t) > 0 {
		t.Error("the listener accepted a connection from the workspace's compile")
	}
}

// TestWorkspaceKeepsTree: a fix's Makefile that writes into the prepared
// tree (its own path, as make sees it) changes only the workspace.
func TestWorkspaceKeepsTree(t *testing.T) {
	parent := t.TempDir()
	if !canOverlay(context.Background(), parent) {
		t.Skip("cannot mount an overlay here: workspaces are hard-linked copies")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "shared.c"), []byte("int a;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := fmt.Sprintf("x.o:\n\techo planted > %[1]s/planted; echo appended >> %[1]s/shared.c; echo ok > $@\n", src)
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := (&Tree{Dir: src, CC: "gcc"}).Workspace(context.Background(), parent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Compile(context.Background(), "", "x.o"); err != nil {
		t.Fatal(err)
	}
	if err := ws.Remove(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(src, "shared.c")); string(data) != "int a;\n" {
		t.Errorf("the tree's shared.c = %q after the workspace's compile wrote to it", data)
	}
	for _, f := range []string{"planted", "x.o"} {
		if _, err := os.Stat(filepath.Join(src, f)); err == nil {
			t.Errorf("the workspace's compile left %s in the tree", f)
		}
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("the workspace left %v behind", ents)
	}
}

func TestFailureLines(t *testing.T) {
	var out strings.Builder
	out.WriteString("  CC      mm/khugepaged.o\n")
	out.WriteString("mm/khugepaged.c:1834:3: error: implicit declaration of function 'mapping_set_update'\n")
	for i := range 40 {
		fmt.Fprintf(&out, "mm/khugepaged.c:%d:5: warning: unused variable 'x'\n", 2000+i)
	}
	out.WriteString("make[3]: *** [scripts/Makefile.build:250: mm/khugepaged.o] Error 1\n")
	got := failureLines(out.String())
	if !strings.HasPrefix(got, "mm/khugepaged.c:1834:3: error: implicit declaration") || !strings.Contains(got, "Error 1") {
		t.Errorf("failureLines = %q…, want the error line first, then the tail", got[:min(len(got), 200)])
	}
	short := "a\nb: error here\n"
	if got := failureLines(short); got != strings.TrimRight(short, "\n") && got != short {
		t.Errorf("failureLines(%q) = %q, want the output as it is", short, got)
	}
}

// TestWorkspaceConfinesFix: a fix whose Makefile change does what a build
// must not fails the compile with a clear error, and leaves nothing
// behind: the tree, the builder's directories and /tmp are as they were,
// and removing the workspace leaves its parent empty. Each case was
// checked to fail without the isolation it tests, on a copy of the
// sandbox package with that part taken out: without the network
// namespace the loopback case failed (and TestWorkspaceNoNetwork); without
// the uid switch the root-only file and set-uid cases; without the /tmp
// tmpfs the /tmp case; without the hidden directories the data directory
// case; without RLIMIT_AS or with a later deadline the limit cases. The
// set-uid case tests the uid: on an idmapped tree the program shows as the
// job's own; sandbox's TestRun tests no_new_privs with a root one.
func TestWorkspaceConfinesFix(t *testing.T) {
	needSandbox(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	parent := t.TempDir()
	if !canOverlay(context.Background(), parent) {
		t.Skip("cannot mount an overlay here")
	}
	ln := testenv.Listen(t)
	src := t.TempDir()
	files := map[string]string{
		"Makefile": "x.o: x.c\n\t@true\n\t$(CC) -c -o $@ $<\n",
		"x.c":      "int x;\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(src, "Makefile"), 0o644)
	os.Chmod(filepath.Join(src, "x.c"), 0o644)
	idBin, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id")
	}
	if data, err := os.ReadFile(idBin); err == nil && !sandbox.Rootless() {
		// A set-uid-root program in the tree: the job's way back to root.
		if err := os.WriteFile(filepath.Join(src, "suid-id"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(src, "suid-id"), 0o755|os.ModeSetuid)
	}
	dataDir := t.TempDir() // the builder's data directory, hidden from the job
	planted := filepath.Join(os.TempDir(), fmt.Sprintf("tuxtape-planted-%d", os.Getpid()))
	if err := os.WriteFile(planted, []byte("left by another job\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(planted)
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("tuxtape-marker-%d", os.Getpid()))
	defer os.Remove(marker)
	snapshot := func() map[string]string {
		m := map[string]string{}
		filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				data, _ := os.ReadFile(p)
				fi, _ := d.Info()
				m[p] = fmt.Sprintf("%v %q", fi.Mode(), data)
			}
			return nil
		})
		return m
	}
	before := snapshot()
	port := ln.Port
	for _, tc := range []struct {
		name, recipe string
		limits       sandbox.Limits
		want         string // in the error
		limit        error
		rootOnly     bool // holds by the job's own uid (a rootless job is the builder's uid)
	}{
		{"writes /tmp, reads another job's file there", "echo stolen > " + marker + "; cat " + planted, sandbox.Limits{}, "No such file or directory", nil, false},
		{"writes the builder's data directory", "echo stolen > " + dataDir + "/stolen", sandbox.Limits{}, "Read-only file system", nil, false},
		// The tree's path is the workspace's: the write lands in the
		// job's copy of x.c, which then does not compile; the tree keeps
		// its own (the snapshot below).
		{"writes into the prepared tree", "echo appended >> " + src + "/x.c", sandbox.Limits{}, "x.c:2:1: error", nil, false},
		{"connects to a listener on loopback", fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'", port), sandbox.Limits{}, "Network is unreachable", nil, false},
		{"reads a root-only file", "cat /etc/shadow", sandbox.Limits{}, "Permission denied", nil, false},
		{"becomes root again", `test "$$(./suid-id -u)" = 0 || { echo "still uid $$(id -u)"; exit 1; }`, sandbox.Limits{}, "still uid", nil, true},
		{"exceeds the memory limit", "head -c 1G /dev/zero | tail -n 1 >/dev/null", sandbox.Limits{Memory: 256 << 20, Time: time.Minute}, "memory limit", sandbox.ErrMemoryLimit, false},
		{"exceeds the time limit", "sleep 60", sandbox.Limits{Time: 2 * time.Second}, "time limit", sandbox.ErrTimeLimit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "reads a root-only file" {
				if _, err := os.Stat("/etc/shadow"); err != nil {
					t.Skip("no /etc/shadow to read")
				}
			}
			if tc.rootOnly && sandbox.Rootless() {
				t.Skip("rootless: the job is the builder's uid, and a set-uid program is its own")
			}
			tree := &Tree{Dir: src, CC: "gcc", Sandbox: &sandbox.Config{Limits: tc.limits, Hide: []string{dataDir}}}
			ws, err := tree.Workspace(context.Background(), parent)
			if err != nil {
				t.Fatal(err)
			}
			fix := "--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n x.o: x.c\n-\t@true\n+\t" + tc.recipe + "\n \t$(CC) -c -o $@ $<\n"
			if _, err := ws.Apply(context.Background(), []byte(fix)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = ws.Compile(context.Background(), "", "x.o")
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.limit != nil && !errors.Is(err, tc.limit)) {
				t.Errorf("Compile with the recipe %q = %v, want an error saying %q", tc.recipe, err, tc.want)
			}
			if tc.limits.Time > 0 && time.Since(start) > tc.limits.Time+10*time.Second {
				t.Errorf("the compile ran %v past a %v limit", time.Since(start), tc.limits.Time)
			}
			if err := ws.Remove(); err != nil {
				t.Error(err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("the workspace left %v in %s", ents, parent)
			}
			if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the tree changed:\n%v\nwant\n%v", after, before)
			}
			for _, p := range []string{marker, filepath.Join(dataDir, "stolen")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("the job left %s", p)
				}
			}
		})
	}
	if ln.Heard(t) > 0 {
		t.Error("the listener accepted a connection from a job")
	}
}

// TestCompileUnfixed: the unfixed compile writes nothing into the tree;
// its objects go to the tree's object cache, and a second compile of the
// same unit takes the cached one without compiling again.
func TestCompileUnfixed(t *testing.T) {
	needSandbox(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	root := t.TempDir()
	src := filepath.Join(root, "tree")
	if err := os.MkdirAll(filepath.Join(src, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A record kbuild's way: the object's build command, which a rerun
	// finds up to date.
	mk := "fs/%.o: fs/%.c\n\t$(CC) -c -o $@ $< && echo 'cmd_$@ := gcc -DMODULE -DKBUILD_MODNAME='\\''\"x\"'\\''' > fs/.$(notdir $@).cmd && echo built\n"
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "fs", "x.c"), []byte("int x;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(src, "fs", "x.c"), old, old)
	tree := &Tree{Dir: src, CC: "gcc"}
	if !canOverlay(context.Background(), root) {
		t.Skip("cannot mount an overlay here")
	}
	paths, err := tree.CompileUnfixed(context.Background(), "", "fs/x.o")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(objectCache(src), "fs", "x.o"); len(paths) != 1 || paths[0] != want {
		t.Fatalf("CompileUnfixed = %v, want [%s]", paths, want)
	}
	first, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "fs", "x.o")); err == nil {
		t.Error("the unfixed compile wrote its object into the tree")
	}
	if m, err := tree.UnitModule("fs/x.o"); err != nil || m != "x" {
		t.Errorf("UnitModule = %q, %v; want x from the cached build record", m, err)
	}
	if _, err := tree.CompileUnfixed(context.Background(), "", "fs/x.o"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Stat(paths[0]); !again.ModTime().Equal(first.ModTime()) {
		t.Error("the second unfixed compile built the unit again instead of taking the cached object")
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != "tree" && e.Name() != filepath.Base(objectCache(src)) {
			t.Errorf("the unfixed compile left %s beside the tree", e.Name())
		}
	}
}

// TestWorkspaceRootless runs the workspace tests again as an unprivileged
// uid (nobody), where the sandbox is a user namespace.
func TestWorkspaceRootless(t *testing.T) {
	out := testenv.RerunAsNobody(t, "TUXTAPE_KTREE_ROOTLESS_CHILD",
		"^(TestWorkspaceApply|TestWorkspaceNoNetwork|TestWorkspaceKeepsTree|TestWorkspaceConfinesFix|TestCompileUnfixed)$",
		"TestWorkspaceApply", "TestWorkspaceConfinesFix", "TestCompileUnfixed")
	t.Logf("as nobody:\n%s", out)
}
