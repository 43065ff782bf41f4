package klp

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

func TestRepointable(t *testing.T) {
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
		{".data", elf.SHF_ALLOC | elf.SHF_WRITE, nil, false, ""},
		{".rodata.bpf_super_ops", elf.SHF_ALLOC, slots, false, "read-only data"},
		{".data..ro_after_init", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "read-only after init"},
		{".init.data", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "__init/__exit data"},
		{".data..percpu", elf.SHF_ALLOC | elf.SHF_WRITE, slots, false, "per-CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.sec, func(t *testing.T) {
			sym := &elfobj.Symbol{Name: "ops", Type: elf.STT_OBJECT, Section: &elfobj.Section{Name: tt.sec, Type: elf.SHT_PROGBITS, Flags: tt.flags}}
			ok, why := repointable(elfobj.DataChange{Name: "ops", Before: sym, After: sym, Slots: tt.slots})
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("repointable = %v, %q; want %v, %q", ok, why, tt.ok, tt.why)
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
