package klp_test

import (
	"context"
	"debug/elf"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

var kernel612 = &preparedKernel{release: kernelenv.Release612, version: kernelenv.Version612}

// debianKernel612 is Debian bookworm's 6.12 cloud kernel (about 380 MB of
// packages and a few minutes to prepare its tree the first time): the
// release named 6.12.N+deb12-FLAVOUR, modules shipped as .ko.xz, built with
// IBT, call padding and return thunks, so objtool runs on the linked patch
// module.
func debianKernel612(t *testing.T) *target.Kernel { return kernel612.get(t) }

// returnSites counts the entries of the module's .return_sites, where the
// loader rewrites each `jmp __x86_return_thunk` (finalize refuses a module
// with one missing).
func returnSites(t *testing.T, ko string) int {
	t.Helper()
	f, err := elf.Open(ko)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".return_sites")
	if s == nil {
		return 0
	}
	return int(s.Size / 4)
}

// Test612ReturnThunk: a real vmlinux fix of the 6.12 corpus
// (CVE-2026-68426, validate_xmit_xfrm, which every transmitted packet
// goes through) is built, loaded, run from user space (ping on lo) with
// function tracing limited to the livepatch module, disabled and
// unloaded. Its returns go through the return thunk; unless the module
// lists them in .return_sites the patched code runs the unpatched thunk
// and the kernel WARNs in __warn_thunk, which the VM check reports.
func Test612ReturnThunk(t *testing.T) {
	k := debianKernel612(t)
	const name = "tt_612_xfrm"
	ko, res := build(t, k, name, filepath.Join(testenv.Corpus(t, kernelenv.Corpus612), "patches", "CVE-2026-68426.patch"))
	if len(res.Units) != 1 || res.Units[0].Object != "vmlinux" || strings.Join(res.Units[0].Changed, ",") != "validate_xmit_xfrm" {
		t.Fatalf("units = %+v, want validate_xmit_xfrm of vmlinux", res.Units)
	}
	if n := returnSites(t, ko); n == 0 {
		t.Errorf("%s has no .return_sites", ko)
	}
	exercise := vmcheck.Traced(name, "ping_lo", `ping_lo() {
	ip link set lo up
	ping -c 3 -W 1 127.0.0.1 >/dev/null 2>&1 && echo "ping-$1: ok" || echo "ping-$1: failed"
}`)
	r, err := vmcheck.Check(context.Background(), k.VM(), ko, name, []string{"vmlinux"}, exercise)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM values: %v", r.Values)
	for _, p := range r.Problems {
		t.Errorf("problem: %s", p)
	}
	if !r.OK() {
		t.Fatalf("VM report: %s\n%s", r.Summary(), cmdout.Tail(r.Dmesg, 30))
	}
	kv := r.Values
	if kv["ping-patched"] != "ok" || kv["ping-after"] != "ok" {
		t.Errorf("ping patched %q, after %q; want ok", kv["ping-patched"], kv["ping-after"])
	}
	if kv["sysfs"] != "vmlinux/validate_xmit_xfrm,1" {
		t.Errorf("sysfs = %q, want vmlinux/validate_xmit_xfrm,1", kv["sysfs"])
	}
	if strings.TrimSpace(kv["ran"]) == "" {
		t.Errorf("no function of %s ran while packets were sent (ran = %q)", name, kv["ran"])
	}
}

// Test612ModuleXZ: a real fix of the 6.12 corpus to a module the image
// ships compressed (CVE-2026-68448, ovl_copyfile of overlay.ko.xz): its
// symbols are read from the .ko.xz, and the patch loads before the module
// and after it, is applied to it as it loads, and unloads cleanly.
func Test612ModuleXZ(t *testing.T) {
	k := debianKernel612(t)
	matches, _ := filepath.Glob(filepath.Join(k.ModulesDir, "kernel", "fs", "overlayfs", "overlay.ko*"))
	if len(matches) != 1 || !strings.HasSuffix(matches[0], ".ko.xz") {
		t.Fatalf("overlay module files %v, want one .ko.xz", matches)
	}
	const name = "tt_612_ovl"
	ko, res := build(t, k, name, filepath.Join(testenv.Corpus(t, kernelenv.Corpus612), "patches", "CVE-2026-68448.patch"))
	if len(res.Units) != 1 || res.Units[0].Object != "overlay" {
		t.Fatalf("units = %+v, want one unit of overlay", res.Units)
	}
	if n := returnSites(t, ko); n == 0 {
		t.Errorf("%s has no .return_sites", ko)
	}
	kv := bootWith(t, k, ko, name, "", "overlay")
	for key, want := range map[string]string{"objects": "overlay=1", "objects-again": "overlay=1", "disabled": "gone", "modules": "0"} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	if strings.TrimSpace(kv["later"]) != "overlay" {
		t.Errorf("later = %q, want overlay loaded after the patch", kv["later"])
	}
	if !strings.Contains(kv["sysfs"], "overlay/ovl_copyfile,") {
		t.Errorf("sysfs = %q, want overlay/ovl_copyfile", kv["sysfs"])
	}
}

// Test612CallersAcrossUnits: as TestCallersAcrossUnits, on the 6.12 line
// (lib/ is built without ftrace there too; the patched callers run with
// IBT and return thunks).
func Test612CallersAcrossUnits(t *testing.T) {
	callersAcrossUnits(t, debianKernel612(t), "tt_612_uuid_callers")
}
