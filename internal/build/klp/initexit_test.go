package klp

import (
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

func TestWithoutInit(t *testing.T) {
	text := &elfobj.Section{Name: ".text.foo"}
	initText := &elfobj.Section{Name: ".init.text"}
	exitText := &elfobj.Section{Name: ".exit.text"}
	initData := &elfobj.Section{Name: ".init.data"}
	data := &elfobj.Section{Name: ".data"}
	fn := func(name string, secs ...*elfobj.Section) *elfobj.Function {
		f := &elfobj.Function{Name: name}
		for _, s := range secs {
			f.Parts = append(f.Parts, elfobj.Part{Section: s})
		}
		return f
	}
	changed := func(f *elfobj.Function) elfobj.FuncChange { return elfobj.FuncChange{Name: f.Name, After: f} }
	dataChange := func(name string, s *elfobj.Section) elfobj.DataChange {
		return elfobj.DataChange{Name: name, After: &elfobj.Symbol{Name: name, Section: s}, Reasons: []string{"value"}}
	}
	for _, tt := range []struct {
		name        string
		ch          elfobj.Changes
		object      string
		keep        []string // function and data names left in
		leftOut     []string // substrings, one per left-out item
		nothingElse bool
	}{
		{"runtime only", elfobj.Changes{Changed: []elfobj.FuncChange{changed(fn("foo", text))}}, "vmlinux", []string{"foo"}, nil, false},
		{"init and runtime", elfobj.Changes{Changed: []elfobj.FuncChange{changed(fn("foo", text)), changed(fn("foo_init", initText))}}, "vmlinux",
			[]string{"foo"}, []string{"foo_init: ran at boot"}, false},
		{"module exit only", elfobj.Changes{Changed: []elfobj.FuncChange{changed(fn("bar_exit", exitText))}}, "bar",
			nil, []string{"bar_exit: ran when bar loaded"}, true},
		{"new init function and initdata", elfobj.Changes{New: []*elfobj.Function{fn("setup_x", initText)}, ChangedData: []elfobj.DataChange{dataChange("x_table", initData), dataChange("state", data)}, Changed: []elfobj.FuncChange{changed(fn("foo", text))}}, "vmlinux",
			[]string{"foo", "state"}, []string{"new __init/__exit function setup_x", "__initdata x_table"}, false},
		{"nothing", elfobj.Changes{}, "vmlinux", nil, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, left, nothing := withoutInit(&tt.ch, tt.object)
			var kept []string
			for _, c := range out.Changed {
				kept = append(kept, c.Name)
			}
			for _, f := range out.New {
				kept = append(kept, f.Name)
			}
			for _, d := range out.ChangedData {
				kept = append(kept, d.Name)
			}
			if !slices.Equal(kept, tt.keep) {
				t.Errorf("kept %v, want %v", kept, tt.keep)
			}
			if len(left) != len(tt.leftOut) {
				t.Fatalf("left out %q, want %d items like %q", left, len(tt.leftOut), tt.leftOut)
			}
			for i, want := range tt.leftOut {
				if !strings.Contains(left[i], want) {
					t.Errorf("left out[%d] = %q, want it to say %q", i, left[i], want)
				}
			}
			if nothing != tt.nothingElse {
				t.Errorf("nothingElse = %v, want %v", nothing, tt.nothingElse)
			}
		})
	}
}
