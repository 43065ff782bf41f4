package elfobj

import (
	"debug/elf"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// diffWant is the exact outcome expected from Diff, as sorted names.
type diffWant struct {
	changed, lineOnly, added, removed []string
	changedData, addedData, removed_  []string
}

func TestDiff(t *testing.T) {
	tests := []struct {
		dir  string
		want diffWant
	}{
		{"body", diffWant{changed: []string{"add"}}},
		{"line", diffWant{
			changed:  []string{"debug_fmt", "offsets", "reported", "warn_once"},
			lineOnly: []string{"resched", "sleepy", "warn_fmt"},
		}},
		{"strings", diffWant{changed: []string{"first", "third"}}},
		{"clone", diffWant{
			changed: []string{"use1", "use2"},
			added:   []string{"helper.constprop.0"},
			removed: []string{"helper"},
		}},
		{"isra", diffWant{
			changed:  []string{"read1"},
			added:    []string{"reader.isra.0"},
			removed:  []string{"reader"},
			removed_: []string{"reader_ref"},
		}},
		{"data", diffWant{changedData: []string{"buf", "limit", "ptr"}, addedData: []string{"fresh"}}},
		{"newfunc", diffWant{added: []string{"extra"}}},
		{"inline", diffWant{changed: []string{"a", "b"}}},
		{"cold", diffWant{changed: []string{"guarded"}}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"user", "kernel"} {
			t.Run(tt.dir+"/"+mode, func(t *testing.T) {
				t.Parallel()
				before := openObj(t, "diff/"+tt.dir+"/before.c", mode)
				after := openObj(t, "diff/"+tt.dir+"/after.c", mode)
				ch, err := Diff(before, after)
				if err != nil {
					t.Fatalf("Diff(%s) error: %v", tt.dir, err)
				}
				got := diffWant{
					changed:     funcChangeNames(ch.Changed),
					lineOnly:    funcChangeNames(ch.LineOnly),
					added:       funcNames(ch.New),
					removed:     funcNames(ch.Removed),
					changedData: dataChangeNames(ch.ChangedData),
					addedData:   symNames(ch.NewData),
					removed_:    symNames(ch.RemovedData),
				}
				check := func(what string, got, want []string) {
					t.Helper()
					if !slices.Equal(got, want) {
						t.Errorf("Diff(%s) %s = %q, want %q", tt.dir, what, got, want)
					}
				}
				check("changed", got.changed, tt.want.changed)
				check("line-only", got.lineOnly, tt.want.lineOnly)
				check("new", got.added, tt.want.added)
				check("removed", got.removed, tt.want.removed)
				check("changed data", got.changedData, tt.want.changedData)
				check("new data", got.addedData, tt.want.addedData)
				check("removed data", got.removed_, tt.want.removed_)
				if t.Failed() {
					for _, c := range ch.Changed {
						t.Logf("changed %s: %s", c.Name, strings.Join(c.Reasons, "; "))
					}
					for _, c := range ch.ChangedData {
						t.Logf("changed data %s: %s", c.Name, strings.Join(c.Reasons, "; "))
					}
				}
				for _, c := range append(ch.Changed, ch.LineOnly...) {
					if c.Before == nil || c.After == nil {
						t.Errorf("Diff(%s) %s: missing before/after function", tt.dir, c.Name)
					}
				}
				for _, c := range ch.Changed {
					if len(c.Reasons) == 0 {
						t.Errorf("Diff(%s) changed %s without a reason", tt.dir, c.Name)
					}
				}
			})
		}
	}
}

// TestDiffReasons pins the wording of a few reasons, which end up in the
// generator's report to a human.
func TestDiffReasons(t *testing.T) {
	ch := diffDir(t, "data", "user")
	reasons := map[string]string{}
	for _, c := range ch.ChangedData {
		reasons[c.Name] = strings.Join(c.Reasons, "; ")
	}
	want := map[string]string{
		"limit": "initial value differs at +0x0: 0a000000 → 14000000",
		"buf":   "size 16 → 32",
	}
	for name, w := range want {
		if reasons[name] != w {
			t.Errorf("Diff(data) reasons for %s = %q, want %q", name, reasons[name], w)
		}
	}
	if r := reasons["ptr"]; r != "pointer +0x0 R_X86_64_64 sym:limit+0x0 → +0x0 R_X86_64_64 sym:other+0x0" {
		t.Errorf("Diff(data) reasons for ptr = %q, want a pointer limit → other", r)
	}

	ch = diffDir(t, "line", "kernel")
	for _, c := range ch.Changed {
		if c.Name == "warn_once" {
			if got := strings.Join(c.Reasons, "; "); got != "__bug_table entry for warn_once+0xe differs" {
				t.Errorf("Diff(line) reasons for warn_once = %q", got)
			}
		}
	}
}

func diffDir(t *testing.T, dir, mode string) *Changes {
	t.Helper()
	ch, err := Diff(openObj(t, "diff/"+dir+"/before.c", mode), openObj(t, "diff/"+dir+"/after.c", mode))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestDiffSelf checks that every test object is unchanged against itself
// and against a fresh read of itself.
func TestDiffSelf(t *testing.T) {
	for _, src := range testSources(t) {
		for mode := range modes {
			a := openObj(t, src, mode)
			b := openObj(t, src, mode)
			ch, err := Diff(a, b)
			if err != nil {
				t.Fatalf("Diff(%s, itself) error: %v", src, err)
			}
			if n := countChanges(ch); n != 0 {
				t.Errorf("Diff(%s %s, itself) = %d changes, want 0: %+v", src, mode, n, ch)
			}
		}
	}
}

// TestDiffRenumberedClones renames a clone and a numbered static local the
// way another compilation might number them: nothing changes.
func TestDiffRenumberedClones(t *testing.T) {
	for mode := range modes {
		before := openObj(t, "diff/clone/after.c", mode)
		after := openObj(t, "diff/clone/after.c", mode)
		renamed := 0
		for _, s := range after.Symbols {
			if s.Name == "helper.constprop.0" {
				s.Name = "helper.constprop.7"
				renamed++
			}
		}
		for _, s := range after.Sections {
			if s.Name == ".text.helper.constprop.0" {
				s.Name = ".text.helper.constprop.7"
				renamed++
			}
		}
		if renamed != 2 {
			t.Fatalf("renamed %d names, want 2 (symbol and section)", renamed)
		}
		// Through the writer, so that the names really are in the file.
		out, err := after.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		reread, err := Open(strings.NewReader(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := Diff(before, reread)
		if err != nil {
			t.Fatal(err)
		}
		if n := countChanges(ch); n != 0 {
			t.Errorf("Diff(clone %s, renumbered) = %d changes, want 0: %+v", mode, n, ch)
		}
	}
}

func countChanges(ch *Changes) int {
	return len(ch.Changed) + len(ch.New) + len(ch.Removed) + len(ch.LineOnly) +
		len(ch.ChangedData) + len(ch.NewData) + len(ch.RemovedData)
}

func TestFunctions(t *testing.T) {
	f := openObj(t, "diff/line/before.c", "kernel")
	fns := Functions(f)
	byName := map[string]*Function{}
	for _, fn := range fns {
		byName[fn.Name] = fn
	}
	// Every function has its ftrace call site at offset 0.
	for _, fn := range fns {
		var mcount []SpecialRef
		for _, e := range fn.Special {
			if e.Section.Name == "__mcount_loc" {
				mcount = append(mcount, e)
			}
		}
		if len(mcount) != 1 || mcount[0].At != 0 || mcount[0].Part != 0 || mcount[0].Size != 8 {
			t.Errorf("Functions: %s __mcount_loc entries = %+v, want one at offset 0", fn.Name, mcount)
		}
	}
	tests := []struct {
		fn       string
		special  string // section name of the one other entry, "" for none
		part, at int
		refs     []string
	}{
		{"sleepy", "", 0, 0, []string{"__fentry__", "__might_sleep", "work"}},
		{"warner", "__bug_table", 0, 0xe, []string{"__fentry__", "work"}},
		{"debugged", "__dyndbg", -1, 0, []string{"__fentry__", "trace", "work"}},
	}
	for _, tt := range tests {
		fn := byName[tt.fn]
		if fn == nil {
			t.Fatalf("Functions: no %s", tt.fn)
		}
		var other []SpecialRef
		for _, e := range fn.Special {
			if e.Section.Name != "__mcount_loc" {
				other = append(other, e)
			}
		}
		switch {
		case tt.special == "" && len(other) != 0:
			t.Errorf("Functions: %s special entries = %+v, want none", tt.fn, other)
		case tt.special != "" && (len(other) != 1 || other[0].Section.Name != tt.special ||
			other[0].Part != tt.part || other[0].At != uint64(tt.at)):
			t.Errorf("Functions: %s special entries = %+v, want one in %s at part %d +%#x", tt.fn, other, tt.special, tt.part, tt.at)
		}
		// Only named symbols: strings and descriptors are reached through
		// section symbols and local objects.
		var named []string
		for _, s := range fn.Refs {
			if s.Type != elf.STT_SECTION && s.Section == nil {
				named = append(named, s.Name)
			}
		}
		slices.Sort(named)
		if !slices.Equal(named, tt.refs) {
			t.Errorf("Functions: %s undefined refs = %q, want %q", tt.fn, named, tt.refs)
		}
	}
	// debugged refers to its descriptor, a local object in __dyndbg.
	found := false
	for _, s := range byName["debugged"].Refs {
		if s.Section != nil && s.Section.Name == "__dyndbg" && s.Type == elf.STT_OBJECT {
			found = true
		}
	}
	if !found {
		t.Errorf("Functions: debugged refs = %v, want its __dyndbg descriptor", symNames(byName["debugged"].Refs))
	}
}

func TestFunctionsColdParts(t *testing.T) {
	f := openObj(t, "diff/cold/before.c", "user")
	var names []string
	for _, fn := range Functions(f) {
		var parts []string
		for _, p := range fn.Parts {
			parts = append(parts, p.Sym.Name+"@"+p.Section.Name)
		}
		names = append(names, fn.Name+"="+strings.Join(parts, ","))
	}
	want := []string{"guarded=guarded@.text.guarded,guarded.cold@.text.unlikely.guarded", "plain=plain@.text.plain"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("Functions(cold) = %q, want %q", names, want)
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"foo", "foo"},
		{"foo.isra.0", "foo.isra"},
		{"foo.constprop.12", "foo.constprop"},
		{"foo.part.3", "foo.part"},
		{"foo.cold", "foo.cold"},
		{"foo.cold.7", "foo.cold"},
		{"foo.constprop.0.isra.1", "foo.constprop.isra"},
		{"foo.llvm.8237465", "foo"},
		{"count.12", "count"},
		{"__func__.3", "__func__"},
		{"__UNIQUE_ID_ddebug412", "__UNIQUE_ID_ddebug"},
		{"__UNIQUE_ID___addressable_foo2133", "__UNIQUE_ID___addressable_foo"},
		// Names from CVE-2026-64355 (kernel/bpf/devmap.c) and
		// CVE-2026-74395 (drivers/infiniband/hw/mlx5/devx.c).
		{"__BTF_ID__struct__bpf_dtab__6381021", "__BTF_ID__struct__bpf_dtab__"},
		{"_object_methods_MLX5_IB_OBJECT_DEVX3025", "_object_methods_MLX5_IB_OBJECT_DEVX"},
		{"__pci_fixup_quirk_intel_irqbalance123", "__pci_fixup_quirk_intel_irqbalance"},
		{"foo2", "foo2"},
		{".text.foo.isra.0", ".text.foo.isra"},
		{".data..percpu", ".data..percpu"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func funcChangeNames(cs []FuncChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func dataChangeNames(cs []DataChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func funcNames(fs []*Function) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func symNames(ss []*Symbol) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// TestDiffSlots: a data object whose only differences are function
// pointers (repointed, set or cleared; to functions, into data, to
// symbols defined elsewhere) lists them as slots; one that differs in
// anything else, or points into a function, lists none.
func TestDiffSlots(t *testing.T) {
	for _, mode := range []string{"user", "kernel"} {
		t.Run(mode, func(t *testing.T) {
			ch := diffDir(t, "slots", mode)
			got := map[string]string{}
			for _, d := range ch.ChangedData {
				var s []string
				for _, sl := range d.Slots {
					name := func(sym *Symbol, addend int64) string {
						if sym == nil {
							return "NULL"
						}
						return fmt.Sprintf("%s%+d", sym.Name, addend)
					}
					s = append(s, fmt.Sprintf("+%#x %s→%s", sl.Offset, name(sl.Before, sl.BeforeAddend), name(sl.After, sl.AfterAddend)))
				}
				got[d.Name] = strings.Join(s, ",")
			}
			want := map[string]string{
				"table":    "+0x8 generic_peek+0→new_peek+0,+0x10 old_close+0→shared_close+0",
				"flagged":  "",                     // its flags changed too
				"ro_table": "+0x8 NULL→new_peek+0", // repointable here; the generator refuses read-only data
				"dp":       "+0x0 NULL→limit+0",
				"bounds":   "+0x0 vals+4→vals+8,+0x8 NULL→ext_vals+12",
				"inside":   "", // a pointer into a function
			}
			if !maps.Equal(got, want) {
				t.Errorf("slots = %q, want %q", got, want)
			}
		})
	}
}
