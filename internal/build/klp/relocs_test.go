package klp

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

// unitObject compiles a tiny unit as the kernel would (no PIC, kernel code
// model, function sections): f reads hidden, which the running kernel does
// not export, and calls g, which it does.
func unitObject(t *testing.T) *elfobj.File {
	t.Helper()
	return compileUnit(t, "extern int hidden; int g(int);\nint f(int x) { return g(x) + hidden; }\n")
}

// compileUnit compiles C source src as the kernel would.
func compileUnit(t *testing.T, src string) *elfobj.File {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("gcc is required in CI: %v", err)
		}
		t.Skipf("gcc not installed: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "u.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcc, "-O2", "-fno-pie", "-mcmodel=kernel", "-mno-red-zone", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-c", "-o", "u.o", "u.c")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elfobj.OpenFile(filepath.Join(dir, "u.o"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKlpRelocsThroughLink: a livepatch relocation travels through the
// module's link as an ordinary relocation against a weak stand-in, comes
// out as a .klp.rela entry against a .klp.sym symbol at the place the
// link gave it, and every relocated place of the final module is zero,
// whatever bytes the patch object left there (6.12's module loader
// refuses a nonzero one).
func TestKlpRelocsThroughLink(t *testing.T) {
	ld, err := exec.LookPath("ld")
	if err != nil {
		t.Skipf("ld not installed: %v", err)
	}
	f := unitObject(t)
	text := f.Section(".text.f")
	if text == nil {
		t.Fatal("no .text.f")
	}
	rela := f.RelaSections(text)[0]
	// As Extract does: the reference to hidden becomes a livepatch
	// relocation and leaves the object; garbage is left in its place, and
	// under the call's ordinary relocation too.
	var klp []KlpReloc
	kept := rela.Relocs[:0]
	for _, r := range rela.Relocs {
		if r.Sym != nil && r.Sym.Name == "hidden" {
			klp = append(klp, KlpReloc{Section: text.Name, Offset: r.Offset, Type: r.Type, Object: "vmlinux", Name: "hidden", Addend: r.Addend})
			copy(text.Data[r.Offset:], []byte{0xde, 0xad, 0xbe, 0xef})
			continue
		}
		if r.Sym != nil && r.Sym.Name == "g" {
			copy(text.Data[r.Offset:], []byte{0x11, 0x22, 0x33, 0x44})
		}
		kept = append(kept, r)
	}
	rela.Relocs = kept
	if len(klp) != 1 {
		t.Fatalf("unit has %d references to hidden, want 1", len(klp))
	}
	// Another unit of the same patch may name the same target: one stand-in.
	klp = append(klp, klp[0])
	u := &Extracted{File: f, Klp: klp[:1]}
	if err := addPlaceholders(u); err != nil {
		t.Fatal(err)
	}
	if s := f.Symbol(placeholderName(klp[0])); s == nil || s.Bind != elf.STB_WEAK || s.Shndx != elf.SHN_UNDEF {
		t.Fatalf("stand-in symbol = %+v, want a weak undefined one", s)
	}
	dir := t.TempDir()
	obj := filepath.Join(dir, "unit.o")
	data, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Two links, like kbuild's (the module's objects, then the .ko).
	linked := filepath.Join(dir, "m.ko")
	if out, err := exec.Command(ld, "-r", "-o", filepath.Join(dir, "m.o"), obj).CombinedOutput(); err != nil {
		t.Fatalf("ld -r: %v\n%s", err, out)
	}
	if out, err := exec.Command(ld, "-r", "-o", linked, filepath.Join(dir, "m.o")).CombinedOutput(); err != nil {
		t.Fatalf("ld -r: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "final.ko")
	if err := finalize(linked, out, klp[:1]); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	m, err := elfobj.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Symbols {
		if strings.HasPrefix(s.Name, placeholderPrefix) {
			t.Errorf("final module keeps stand-in %s", s.Name)
		}
	}
	var klpSecs []string
	for _, s := range m.Sections {
		if s.Type != elf.SHT_RELA {
			continue
		}
		if strings.HasPrefix(s.Name, ".klp.rela.") {
			klpSecs = append(klpSecs, s.Name)
			if s.Flags&elfobj.SHFRelaLivepatch == 0 || s.Flags&elf.SHF_ALLOC == 0 || s.Target == nil || s.Target.Name != ".text.f" {
				t.Errorf("%s: flags %v, target %v", s.Name, s.Flags, s.Target)
			}
			if len(s.Relocs) != 1 || s.Relocs[0].Sym.Name != ".klp.sym.vmlinux.hidden,0" || s.Relocs[0].Sym.Shndx != elfobj.SHNLivepatch ||
				s.Relocs[0].Offset != klp[0].Offset || s.Relocs[0].Addend != klp[0].Addend || s.Relocs[0].Type != klp[0].Type {
				t.Errorf("%s relocations = %+v, want the one of %+v against .klp.sym.vmlinux.hidden,0", s.Name, s.Relocs, klp[0])
			}
		}
		for _, r := range s.Relocs {
			if r.Sym != nil && r.Sym.Name == "hidden" {
				t.Errorf("%s still refers to hidden", s.Name)
			}
			n := uint64(relocSize(r.Type))
			if tgt := s.Target; tgt != nil && tgt.Flags&elf.SHF_ALLOC != 0 && n > 0 {
				if b := tgt.Data[r.Offset : r.Offset+n]; slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) {
					t.Errorf("%s: bytes under the relocation at %s+%#x are % x, want zero", s.Name, tgt.Name, r.Offset, b)
				}
			}
		}
	}
	if !slices.Equal(klpSecs, []string{".klp.rela.vmlinux..text.f"}) {
		t.Errorf("livepatch relocation sections %v, want [.klp.rela.vmlinux..text.f]", klpSecs)
	}
	// A stand-in the link lost is an error, not a module without the
	// relocation.
	other := KlpReloc{Section: ".text.f", Object: "vmlinux", Name: "other", Type: elf.R_X86_64_PC32}
	if err := finalize(linked, filepath.Join(dir, "x.ko"), []KlpReloc{klp[0], other}); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("finalize with a relocation the module does not have = %v, want an error", err)
	}
	// And a stand-in no relocation names is an error too.
	if err := finalize(linked, filepath.Join(dir, "x.ko"), nil); err == nil || !strings.Contains(err.Error(), "no livepatch relocation names") {
		t.Errorf("finalize without the relocation a stand-in names = %v, want an error", err)
	}
}

// TestCheckReturnSites: a `jmp __x86_return_thunk` that .return_sites
// does not list is refused; listed, it passes.
func TestCheckReturnSites(t *testing.T) {
	text := &elfobj.Section{Name: ".text.f", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Data: []byte{0x90, 0xe9, 0, 0, 0, 0, 0xcc}}
	f := &elfobj.File{}
	f.AddSection(text)
	thunk := f.AddSymbol(&elfobj.Symbol{Name: "__x86_return_thunk", Bind: elf.STB_GLOBAL, Shndx: elf.SHN_UNDEF})
	f.AddRelaSection(".rela.text.f", text, 0, []elfobj.Reloc{{Offset: 2, Type: elf.R_X86_64_PLT32, Sym: thunk, Addend: -4}})
	if err := checkReturnSites(f); err == nil || !strings.Contains(err.Error(), ".text.f+0x1") {
		t.Errorf("checkReturnSites without .return_sites = %v, want one naming .text.f+0x1", err)
	}
	sites := f.AddSection(&elfobj.Section{Name: ".return_sites", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC, Data: make([]byte, 4)})
	sec := f.AddSymbol(&elfobj.Symbol{Type: elf.STT_SECTION, Section: text})
	f.AddRelaSection(".rela.return_sites", sites, 0, []elfobj.Reloc{{Offset: 0, Type: elf.R_X86_64_PC32, Sym: sec, Addend: 1}})
	if err := checkReturnSites(f); err != nil {
		t.Errorf("checkReturnSites with the site listed = %v", err)
	}
}
