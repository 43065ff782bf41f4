package klp

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

func TestNotRepointable(t *testing.T) {
	fn := &elfobj.Symbol{Name: "new_peek", Type: elf.STT_FUNC}
	slots := []elfobj.Slot{{Offset: 8, After: fn}}
	tests := []struct {
		sec   string
		flags elf.SectionFlag
		slots []elfobj.Slot
		ok    bool
		why   string
	}{
		{".data.codel_qdisc_ops", elf.SHF_ALLOC | elf.SHF_WRITE, slots, true, ""},
		{".data..read_mostly", elf.SHF_ALLOC | elf.SHF_WRITE, slots, true, ""},
		{".data", elf.SHF_ALLOC | elf.SHF_WRITE, nil, false, "size 8 → 16"}, // not only pointers
		{".rodata.bpf_super_ops", elf.SHF_ALLOC, slots, false, "read-only data"},
		{".data..ro_after_init", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "read-only after init"},
		{".init.data", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "__init/__exit data"},
		{".data..percpu", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "per-CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.sec, func(t *testing.T) {
			sym := &elfobj.Symbol{Name: "ops", Type: elf.STT_OBJECT, Section: &elfobj.Section{Name: tt.sec, Type: elf.SHT_PROGBITS, Flags: tt.flags}}
			why := notRepointable(elfobj.DataChange{Name: "ops", Before: sym, After: sym, Slots: tt.slots, Reasons: []string{"size 8 → 16"}})
			if (why == "") != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("notRepointable = %q; want repointable %v, a reason with %q", why, tt.ok, tt.why)
			}
		})
	}
}

func TestSlotSwapString(t *testing.T) {
	for _, tt := range []struct {
		s    SlotSwap
		want string
	}{
		{SlotSwap{Data: "codel_qdisc_ops", Offset: 0x38, Before: "qdisc_peek_dequeued", After: "codel_peek", InPatch: true}, "codel_qdisc_ops+0x38: qdisc_peek_dequeued → the patch's codel_peek"},
		{SlotSwap{Data: "bpf_super_ops", Offset: 0x10, After: "generic_free"}, "bpf_super_ops+0x10: NULL → the running kernel's generic_free"},
		{SlotSwap{Data: "ops", Offset: 0, Before: "old"}, "ops+0x0: old → NULL"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestNotRepointableBefore: the running kernel has the object where the
// unfixed build put it; one that moves out of __ro_after_init is not
// written either.
func TestNotRepointableBefore(t *testing.T) {
	slots := []elfobj.Slot{{Offset: 8, After: &elfobj.Symbol{Name: "new_peek", Type: elf.STT_FUNC}}}
	before := &elfobj.Symbol{Name: "ops", Section: &elfobj.Section{Name: ".data..ro_after_init", Flags: elf.SHF_ALLOC | elf.SHF_WRITE}}
	after := &elfobj.Symbol{Name: "ops", Section: &elfobj.Section{Name: ".data.ops", Flags: elf.SHF_ALLOC | elf.SHF_WRITE}}
	if why := notRepointable(elfobj.DataChange{Name: "ops", Before: before, After: after, Slots: slots}); !strings.Contains(why, "read-only after init") {
		t.Errorf("notRepointable = %q, want it refused as read-only after init", why)
	}
}
