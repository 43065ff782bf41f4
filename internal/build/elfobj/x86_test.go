package elfobj

import (
	"bufio"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeInsn(t *testing.T) {
	tests := []struct {
		name           string
		hex            string
		len            int
		immOff, immLen int
	}{
		{"mov $imm32,%esi", "be25000000", 5, 1, 4},
		{"mov $imm32,%r8d", "41b825000000", 6, 2, 4},
		{"movabs $imm64,%rax", "48b80102030405060708", 10, 2, 8},
		{"mov $sym,%rdi", "48c7c700000000", 7, 3, 4},
		{"movw $imm16,(%rax)", "66c7003412", 5, 3, 2},
		{"call rel32", "e800000000", 5, 1, 4},
		{"jne rel32", "0f8500000000", 6, 2, 4},
		{"jle rel8", "7e02", 2, 1, 1},
		{"ud2", "0f0b", 2, 2, 0},
		{"endbr64", "f30f1efa", 4, 4, 0},
		{"nopw 0(%rax,%rax,1)", "660f1f840000000000", 9, 9, 0},
		{"cs nopw", "662e0f1f840000000000", 10, 10, 0},
		{"lea rip-relative", "488d3d00000000", 7, 7, 0},
		{"cmpl $imm8,disp32(%rip)", "833d0000000005", 7, 6, 1},
		{"test $imm8,%cl", "f6c101", 3, 2, 1},
		{"not %cl", "f6d1", 2, 2, 0},
		{"testl $imm32,disp8(%rsp,%rax,1)", "f7440408efbeadde", 8, 4, 4},
		{"moffs64", "a00102030405060708", 9, 1, 8},
		{"enter", "c8100000", 4, 1, 3},
		{"vzeroupper", "c5f877", 3, 3, 0},
		{"vpalignr (VEX 0F3A)", "c4e3790fc108", 6, 5, 1},
		{"vmovups (%rsp),%zmm0 (EVEX)", "62f17c48100424", 7, 7, 0},
		{"pshufd $imm8", "660f70c01b", 5, 4, 1},
		{"crc32 (0F38)", "f20f38f1c1", 5, 5, 0},
		{"lock cmpxchg", "f00fb10a", 4, 4, 0},
	}
	for _, tt := range tests {
		code, err := hexBytes(tt.hex)
		if err != nil {
			t.Fatal(err)
		}
		in, err := decodeInsn(code, 0)
		if err != nil {
			t.Errorf("decodeInsn(%s %s) error: %v", tt.name, tt.hex, err)
			continue
		}
		if in.len != tt.len || in.immOff != tt.immOff || in.immLen != tt.immLen {
			t.Errorf("decodeInsn(%s %s) = len %d imm %d+%d, want len %d imm %d+%d",
				tt.name, tt.hex, in.len, in.immOff, in.immLen, tt.len, tt.immOff, tt.immLen)
		}
	}
	for _, bad := range []string{"", "06", "e800", "0f", "48", "c4", "62f1", "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f090"} {
		code, _ := hexBytes(bad)
		if in, err := decodeInsn(code, 0); !errors.Is(err, errUndecodable) {
			t.Errorf("decodeInsn(%q) = %+v, %v, want errUndecodable", bad, in, err)
		}
	}
}

func hexBytes(s string) ([]byte, error) {
	var out []byte
	for i := 0; i+1 < len(s); i += 2 {
		b, err := strconv.ParseUint(s[i:i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out = append(out, byte(b))
	}
	return out, nil
}

var (
	objdumpInsn = regexp.MustCompile(`^\s*([0-9a-f]+):\t[0-9a-f ]+\t`)
	objdumpFile = regexp.MustCompile(`^(\S+):\s+file format `)
)

// TestDecodeMatchesObjdump checks instruction boundaries against objdump
// on the compiled test objects and, when it is installed, on glibc's
// static library (hand-written SSE, AVX2 and AVX-512 string functions).
func TestDecodeMatchesObjdump(t *testing.T) {
	objdump := needTool(t, "objdump")
	var objs []string
	for _, src := range testSources(t) {
		for mode := range modes {
			objs = append(objs, compile(t, src, mode))
		}
	}
	type target struct{ obj, dump string } // object, and the file objdump reads for it
	var targets []target
	for _, obj := range objs {
		targets = append(targets, target{obj, obj})
	}
	const libc = "/usr/lib/x86_64-linux-gnu/libc.a"
	if _, err := os.Stat(libc); err == nil && !testing.Short() {
		dir := t.TempDir()
		run(t, dir, needTool(t, "ar"), "x", libc)
		members, _ := filepath.Glob(filepath.Join(dir, "*.o"))
		slices.Sort(members)
		for _, m := range members {
			targets = append(targets, target{m, libc})
		}
	} else {
		t.Logf("not checking %s: short mode or not installed", libc)
	}
	dumps := map[string]map[string]map[string][]int{} // file → member → section → starts
	checked := 0
	for _, tg := range targets {
		if dumps[tg.dump] == nil {
			dumps[tg.dump] = objdumpStarts(t, objdump, tg.dump)
		}
		starts := dumps[tg.dump][filepath.Base(tg.obj)]
		f, err := OpenFile(tg.obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_EXECINSTR == 0 || s.Type != elf.SHT_PROGBITS || len(s.Data) == 0 {
				continue
			}
			want, ok := starts[s.Name]
			if !ok {
				continue // objdump found something it calls (bad)
			}
			var got []int
			insns, err := decodeAll(s.Data)
			for _, in := range insns {
				got = append(got, in.off)
			}
			if err != nil || !slices.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Errorf("decodeAll(%s %s): diverges from objdump at instruction %d (%#x): %v", filepath.Base(tg.obj), s.Name, i, at(want, i), err)
				continue
			}
			checked += len(got)
		}
	}
	t.Logf("checked %d instructions in %d objects", checked, len(targets))
}

func at(xs []int, i int) int {
	if i < len(xs) {
		return xs[i]
	}
	return -1
}

// objdumpStarts returns the instruction offsets objdump finds in each
// executable section of each member of an object or archive (keyed by
// the member's base name), leaving out sections where it found invalid
// code.
func objdumpStarts(t *testing.T, objdump, file string) map[string]map[string][]int {
	out := run(t, filepath.Dir(file), objdump, "-d", "-z", "-w", file)
	all := map[string]map[string][]int{}
	var starts map[string][]int
	var sec string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := objdumpFile.FindStringSubmatch(line); m != nil {
			starts = map[string][]int{}
			all[filepath.Base(m[1])] = starts
			continue
		}
		if name, ok := strings.CutPrefix(line, "Disassembly of section "); ok {
			sec = strings.TrimSuffix(name, ":")
			continue
		}
		if m := objdumpInsn.FindStringSubmatch(line); m != nil && starts != nil {
			if strings.Contains(line, "(bad)") {
				starts[sec] = nil
				sec = "\x00bad"
				continue
			}
			off, _ := strconv.ParseInt(m[1], 16, 64)
			starts[sec] = append(starts[sec], int(off))
		}
	}
	for _, starts := range all {
		for s, v := range starts {
			if v == nil {
				delete(starts, s)
			}
		}
	}
	return all
}

func TestBlockEnd(t *testing.T) {
	// static_cpu_has()'s .altinstr_aux block: testb $imm, x(%rip); jnz; jmp,
	// then the next use's block.
	aux := []byte{
		0xf6, 0x05, 0, 0, 0, 0, 0x10, // testb $0x10, x(%rip)
		0x0f, 0x85, 0, 0, 0, 0, // jnz rel32
		0xe9, 0, 0, 0, 0, // jmp rel32
		0xf6, 0x05, 0, 0, 0, 0, 0x20,
		0x0f, 0x85, 0, 0, 0, 0,
		0xeb, 0x00, // jmp rel8
	}
	for _, tt := range []struct {
		off, end int
		err      bool
	}{
		{0, 18, false},
		{18, 33, false},
		{7, 18, false},
		{31, 33, false},
		{33, 0, true}, // nothing left
	} {
		end, err := BlockEnd(aux, tt.off)
		if (err != nil) != tt.err || (!tt.err && end != tt.end) {
			t.Errorf("BlockEnd(aux, %d) = %d, %v; want %d (error %v)", tt.off, end, err, tt.end, tt.err)
		}
	}
	if _, err := BlockEnd([]byte{0x90, 0x90}, 0); err == nil {
		t.Error("BlockEnd(nops) succeeded, want an error: no jump ends them")
	}
}

// FuzzBlockEnd: any bytes give an end inside the code or an error.
func FuzzBlockEnd(f *testing.F) {
	f.Add([]byte{0xf6, 0x05, 0, 0, 0, 0, 0x10, 0x0f, 0x85, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0}, 0)
	f.Add([]byte{0x90, 0xc3}, 1)
	f.Fuzz(func(t *testing.T, code []byte, off int) {
		if off < 0 || off > len(code) {
			return
		}
		end, err := BlockEnd(code, off)
		if err == nil && (end <= off || end > len(code)) {
			t.Fatalf("BlockEnd(%x, %d) = %d: outside (%d, %d]", code, off, end, off, len(code))
		}
	})
}
