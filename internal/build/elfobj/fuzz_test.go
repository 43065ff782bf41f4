package elfobj

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// FuzzOpen feeds Open corrupt objects. Whatever it accepts must survive
// the rest of the package: Functions, Diff against itself (no changes),
// and a write that reads back as the same model.
func FuzzOpen(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	// Diffed against a real object too, the corrupt one reaches the data
	// comparison (pointer slots) with relocations of its own.
	base := openObj(f, "diff/slots/before.c", "kernel")
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Open(bytes.NewReader(data))
		if err != nil {
			if obj != nil {
				t.Fatalf("Open returned a file and an error: %v", err)
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Open error wraps neither ErrFormat nor ErrUnsupported: %v", err)
			}
			return
		}
		Functions(obj)
		ch, err := Diff(obj, obj)
		if err != nil {
			t.Fatalf("Diff(obj, obj) error: %v", err)
		}
		if n := countChanges(ch); n != 0 {
			t.Fatalf("Diff(obj, obj) = %d changes, want 0: %+v", n, ch)
		}
		if ch, err := Diff(base, obj); err == nil {
			for _, d := range ch.ChangedData {
				for _, sl := range d.Slots {
					if sl.Offset+8 > d.After.Size {
						t.Fatalf("slot %s+%#x outside the object (%d bytes)", d.Name, sl.Offset, d.After.Size)
					}
				}
			}
		}
		out, err := obj.Bytes()
		if err != nil {
			t.Fatalf("Bytes() of an object Open accepted: %v", err)
		}
		again, err := Open(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Open(Bytes()) error: %v", err)
		}
		if a, b := dumpModel(obj), dumpModel(again); a != b {
			t.Fatalf("model changed through Bytes():\n%s", lineDiff(a, b))
		}
	})
}

// fuzzSeeds are compiled test objects, plus truncated and bit-flipped
// variants aimed at the headers and tables the parser trusts.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, src := range []string{"diff/body/before.c", "diff/line/before.c", "diff/strings/before.c", "diff/cold/before.c", "diff/slots/after.c"} {
		for _, mode := range []string{"user", "kernel"} {
			obj, err := os.ReadFile(compile(tb, src, mode))
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, obj)
			for _, n := range []int{0, 16, 63, 64, len(obj) / 3, len(obj) / 2, len(obj) - 1} {
				seeds = append(seeds, obj[:n])
			}
			le := binary.LittleEndian
			shoff := int(le.Uint64(obj[40:]))
			shnum := int(le.Uint16(obj[60:]))
			flip := func(off int, bit uint) {
				if off >= 0 && off < len(obj) {
					b := bytes.Clone(obj)
					b[off] ^= 1 << bit
					seeds = append(seeds, b)
				}
			}
			for _, off := range []int{4, 5, 16, 18, 40, 41, 58, 60, 62} {
				flip(off, 0)
			}
			// Every field of a few section headers, and the first
			// bytes of every section's contents.
			for i := 1; i < shnum; i++ {
				h := shoff + i*shdrSize
				if i < 6 {
					for field := 0; field < shdrSize; field += 8 {
						flip(h+field, 3)
						flip(h+field+4, 0)
					}
				}
				flip(int(le.Uint64(obj[h+24:]))+8, 1)
				flip(int(le.Uint64(obj[h+24:]))+28, 5)
			}
		}
	}
	return seeds
}
