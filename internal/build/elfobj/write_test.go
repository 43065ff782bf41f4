package elfobj

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Offsets are the one thing a rewrite may change: the writer lays sections
// out in index order, the assembler puts relocation sections last.
var (
	readelfOffsets = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^(\s*Start of section headers:\s*)\d+`),
		regexp.MustCompile(`(?m)^(There are \d+ section headers, starting at offset )0x[0-9a-f]+`),
		regexp.MustCompile(`(?m)^(\s*\[\s*\d+\]\s+\S*\s+\S+\s+[0-9a-f]{16}\s)[0-9a-f]{6}`),
		regexp.MustCompile(`(?m)^(Relocation section '[^']*' at offset )0x[0-9a-f]+`),
	}
	objdumpHeader = regexp.MustCompile(`(?m)^.*:\s+file format .*$`)
)

func normalizeReadelf(s string) string {
	for _, re := range readelfOffsets {
		s = re.ReplaceAllString(s, "${1}OFF")
	}
	return s
}

func TestWriteRoundTrip(t *testing.T) {
	readelf, objdump, ld := needTool(t, "readelf"), needTool(t, "objdump"), needTool(t, "ld")
	for _, src := range testSources(t) {
		for mode := range modes {
			t.Run(src+"/"+mode, func(t *testing.T) {
				t.Parallel()
				orig := compile(t, src, mode)
				f, err := OpenFile(orig)
				if err != nil {
					t.Fatal(err)
				}
				out, err := f.Bytes()
				if err != nil {
					t.Fatalf("Bytes(%s) error: %v", src, err)
				}
				dir := t.TempDir()
				rewritten := filepath.Join(dir, "unit.o")
				if err := os.WriteFile(rewritten, out, 0o644); err != nil {
					t.Fatal(err)
				}

				want := normalizeReadelf(run(t, dir, readelf, "-W", "-a", orig))
				got := normalizeReadelf(run(t, dir, readelf, "-W", "-a", rewritten))
				if got != want {
					t.Errorf("readelf -a of rewritten %s differs:\n%s", src, lineDiff(want, got))
				}
				want = objdumpHeader.ReplaceAllString(run(t, dir, objdump, "-dr", orig), "")
				got = objdumpHeader.ReplaceAllString(run(t, dir, objdump, "-dr", rewritten), "")
				if got != want {
					t.Errorf("objdump -dr of rewritten %s differs:\n%s", src, lineDiff(want, got))
				}
				run(t, dir, ld, "-r", "-o", filepath.Join(dir, "linked.o"), rewritten)

				// A second trip is byte-identical, and the models match.
				g, err := Open(bytes.NewReader(out))
				if err != nil {
					t.Fatalf("Open(rewritten %s) error: %v", src, err)
				}
				if a, b := dumpModel(f), dumpModel(g); a != b {
					t.Errorf("model of rewritten %s differs:\n%s", src, lineDiff(a, b))
				}
				again, err := g.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, out) {
					t.Errorf("second rewrite of %s is not byte-identical", src)
				}
			})
		}
	}
}

// TestWriteEditLinkRun edits a program's object the ways the generator
// will (new sections and relocation sections, defined symbols, a local
// symbol added after the globals, a renamed and a removed section), then
// links and runs it.
func TestWriteEditLinkRun(t *testing.T) {
	gcc, readelf := needTool(t, "gcc"), needTool(t, "readelf")
	f := openObj(t, "prog/prog.c", "user")

	helper := f.Symbol("helper")
	if helper == nil || helper.Type != elf.STT_FUNC {
		t.Fatalf("prog.o has no function helper")
	}
	helper.Section.Name = ".text.helper_renamed"
	f.RemoveSection(f.Section(".comment"))

	value := f.AddSection(&Section{Name: ".data.added_value", Type: elf.SHT_PROGBITS,
		Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: binary.LittleEndian.AppendUint64(nil, 42)})
	define(t, f, "added_value", value)
	ptr := f.AddSection(&Section{Name: ".data.added_fn", Type: elf.SHT_PROGBITS,
		Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, 8)})
	define(t, f, "added_fn", ptr)
	rela := f.AddRelaSection(".rela.data.added_fn", ptr, 0, []Reloc{{Offset: 0, Type: elf.R_X86_64_64, Sym: helper}})
	marker := f.AddSymbol(&Symbol{Name: "tuxtape_marker", Type: elf.STT_NOTYPE, Bind: elf.STB_LOCAL, Section: value})
	f.AddSection(&Section{Name: ".tuxtape.note", Type: elf.SHT_PROGBITS, Addralign: 4, Data: []byte("note")})

	out, err := f.Bytes()
	if err != nil {
		t.Fatalf("Bytes() error: %v", err)
	}
	if rela.Index != ptr.Index+1 {
		t.Errorf("AddRelaSection put %s at %d, want right after %s at %d", rela.Name, rela.Index, ptr.Name, ptr.Index)
	}
	dir := t.TempDir()
	obj := filepath.Join(dir, "prog.o")
	if err := os.WriteFile(obj, out, 0o644); err != nil {
		t.Fatal(err)
	}

	// Locals first, sh_info of .symtab one past the last local.
	ef, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	firstGlobal := 0
	for i, s := range syms {
		if elf.ST_BIND(s.Info) != elf.STB_LOCAL {
			firstGlobal = i + 1
			break
		}
	}
	for _, s := range syms[firstGlobal-1:] {
		if elf.ST_BIND(s.Info) == elf.STB_LOCAL {
			t.Errorf("local symbol %s after the first global", s.Name)
		}
	}
	if info := ef.Section(".symtab").Info; int(info) != firstGlobal {
		t.Errorf(".symtab sh_info = %d, want %d", info, firstGlobal)
	}
	if marker.Index >= firstGlobal {
		t.Errorf("added local symbol index %d, want < %d", marker.Index, firstGlobal)
	}
	if s := run(t, dir, readelf, "-W", "-S", obj); !strings.Contains(s, ".text.helper_renamed") || strings.Contains(s, ".comment") {
		t.Errorf("readelf -S of the edited object: want .text.helper_renamed and no .comment:\n%s", s)
	}

	run(t, dir, gcc, "-o", "prog", "prog.o")
	if got, want := run(t, dir, "./prog"), "42 42 21\n"; got != want {
		t.Errorf("edited program printed %q, want %q", got, want)
	}
}

func define(t *testing.T, f *File, name string, in *Section) {
	t.Helper()
	s := f.Symbol(name)
	if s == nil || s.Section != nil {
		t.Fatalf("%s is not an undefined symbol", name)
	}
	s.Section, s.Value, s.Size, s.Type = in, 0, uint64(len(in.Data)), elf.STT_OBJECT
}

// TestWriteLivepatch adds what module-elf-format.rst describes: a
// .klp.rela section with SHF_RELA_LIVEPATCH and a SHN_LIVEPATCH symbol,
// and moves a relocation into it.
func TestWriteLivepatch(t *testing.T) {
	f := openObj(t, "diff/line/before.c", "kernel")
	text := f.Section(".text.sleepy")
	rela := f.RelaSections(text)
	if len(rela) != 1 {
		t.Fatalf("want one relocation section for .text.sleepy, have %d", len(rela))
	}
	klpSym := f.AddSymbol(&Symbol{Name: ".klp.sym.vmlinux.__might_sleep,0", Type: elf.STT_FUNC,
		Bind: elf.STB_GLOBAL, Shndx: SHNLivepatch})
	var moved []Reloc
	kept := rela[0].Relocs[:0]
	for _, r := range rela[0].Relocs {
		if r.Sym != nil && r.Sym.Name == "__might_sleep" {
			r.Sym = klpSym
			moved = append(moved, r)
			continue
		}
		kept = append(kept, r)
	}
	rela[0].Relocs = kept
	if len(moved) != 1 {
		t.Fatalf("moved %d relocations, want 1", len(moved))
	}
	f.AddRelaSection(".klp.rela.vmlinux.text.sleepy", text, elf.SHF_ALLOC|SHFRelaLivepatch, moved)
	out, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Open(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	klp := g.Section(".klp.rela.vmlinux.text.sleepy")
	if klp == nil {
		t.Fatalf("rewritten object has no .klp.rela.vmlinux.text.sleepy")
	}
	if want := elf.SHF_ALLOC | elf.SHF_INFO_LINK | SHFRelaLivepatch; klp.Flags != want || klp.Target.Name != ".text.sleepy" || klp.Link != g.Symtab {
		t.Errorf("klp section flags %v target %q link %v, want %v .text.sleepy .symtab", klp.Flags, klp.Target.Name, klp.Link, want)
	}
	if len(klp.Relocs) != 1 || klp.Relocs[0].Sym.Name != klpSym.Name || klp.Relocs[0].Sym.Shndx != SHNLivepatch || klp.Relocs[0].Sym.Section != nil {
		t.Errorf("klp relocations = %+v, want one against %s in SHN_LIVEPATCH", klp.Relocs, klpSym.Name)
	}
	if readelf, err := exec.LookPath("readelf"); err == nil {
		dir := t.TempDir()
		obj := filepath.Join(dir, "klp.o")
		if err := os.WriteFile(obj, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if s := run(t, dir, readelf, "-W", "-r", obj); !strings.Contains(s, ".klp.sym.vmlinux.__might_sleep,0 - 4") {
			t.Errorf("readelf -r does not show the livepatch relocation:\n%s", s)
		}
	}
}

func TestWriteRejectsDangling(t *testing.T) {
	tests := []struct {
		name string
		edit func(*File)
		want string
	}{
		{"removed function section still in .eh_frame", func(f *File) {
			f.RemoveSection(f.Section(".text.add"))
		}, "relocation"},
		{"removed symbol still relocated", func(f *File) {
			f.RemoveSymbol(f.Symbol("__might_sleep"))
		}, "__might_sleep"},
		{"symbol in a section not in the file", func(f *File) {
			f.AddSymbol(&Symbol{Name: "stray", Bind: elf.STB_GLOBAL, Section: &Section{Name: ".nowhere"}})
		}, ".nowhere"},
	}
	for _, tt := range tests {
		src := "diff/body/before.c"
		if tt.want == "__might_sleep" {
			src = "diff/line/before.c"
		}
		f := openObj(t, src, "user")
		tt.edit(f)
		_, err := f.Bytes()
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Bytes() error = %v, want ErrFormat mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestWriteExtendedNumbering writes an object with more sections than
// e_shnum can count, which needs SHN_XINDEX and .symtab_shndx.
func TestWriteExtendedNumbering(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 65,300 sections")
	}
	f := openObj(t, "diff/body/before.c", "user")
	var last *Section
	for i := range 65300 {
		last = f.AddSection(&Section{Name: fmt.Sprintf(".x.%d", i), Type: elf.SHT_PROGBITS,
			Flags: elf.SHF_ALLOC, Addralign: 1, Data: []byte{byte(i)}})
	}
	f.AddSymbol(&Symbol{Name: "far_away", Type: elf.STT_OBJECT, Bind: elf.STB_GLOBAL, Section: last, Size: 1})
	out, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Open(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("Open(extended) error: %v", err)
	}
	if len(g.Sections) != len(f.Sections) {
		t.Errorf("reread %d sections, want %d", len(g.Sections), len(f.Sections))
	}
	s := g.Symbol("far_away")
	if s == nil || s.Section == nil || s.Section.Name != last.Name || s.Section.Index < int(elf.SHN_LORESERVE) {
		t.Errorf("far_away = %+v, want defined in %s", s, last.Name)
	}
	if g.Section(".symtab_shndx") == nil {
		t.Errorf("no .symtab_shndx written")
	}
	if a, b := dumpModel(f), dumpModel(g); a != b {
		t.Errorf("model of rewritten object differs:\n%s", lineDiff(a, b))
	}
}

// dumpModel renders everything the model holds except file offsets.
func dumpModel(f *File) string {
	var b strings.Builder
	fmt.Fprintf(&b, "osabi %v abi %d flags %#x\n", f.OSABI, f.ABIVersion, f.Flags)
	name := func(s *Section) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprintf("%d:%s", s.Index, s.Name)
	}
	for _, s := range f.Sections {
		fmt.Fprintf(&b, "section %s %v %v addr %#x size %d ent %d align %d link %s target %s info %d",
			name(s), s.Type, s.Flags, s.Addr, s.Len(), s.Entsize, s.Addralign, name(s.Link), name(s.Target), s.Info)
		switch s.Type {
		case elf.SHT_SYMTAB, elf.SHT_STRTAB, elf.SHT_SYMTAB_SHNDX:
			// Derived from the model.
		case elf.SHT_RELA:
			for _, r := range s.Relocs {
				fmt.Fprintf(&b, "\n  %#x %v %d %d", r.Offset, r.Type, r.SymbolIndex(), r.Addend)
			}
		default:
			fmt.Fprintf(&b, " %x", s.Data)
		}
		b.WriteByte('\n')
	}
	for _, s := range f.Symbols {
		fmt.Fprintf(&b, "symbol %d %q %#x %d %v %v %v %d %s %v\n", s.Index, s.Name, s.Value, s.Size,
			s.Type, s.Bind, s.Visibility, s.Other, name(s.Section), s.Shndx)
	}
	return b.String()
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 20; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y))
		}
	}
	return strings.Join(out, "\n")
}
