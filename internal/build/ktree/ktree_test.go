package ktree

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
	if overlay && !canOverlay(parent) {
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
	if !canBindMount() {
		t.Skip("cannot make a mount namespace here (needs root): the compile runs without isolation")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	heard := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		heard <- err == nil
	}()
	src := t.TempDir()
	port := ln.Addr().(*net.TCPAddr).Port
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
	ln.Close()
	if <-heard {
		t.Error("the listener accepted a connection from the workspace's compile")
	}
}

// TestWorkspaceKeepsTree: a fix's Makefile that writes into the prepared
// tree (its own path, as make sees it) changes only the workspace.
func TestWorkspaceKeepsTree(t *testing.T) {
	parent := t.TempDir()
	if !canOverlay(parent) {
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
