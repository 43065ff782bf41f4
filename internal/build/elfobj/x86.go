package elfobj

import (
	"errors"
	"fmt"
)

// This file holds an x86-64 instruction *length* decoder, written from the
// opcode maps of the Intel SDM (volume 2, appendix A). The diff needs
// instruction boundaries for two things: to find the end of the
// instruction holding a PC-relative relocation (the addend is relative to
// it), and to recognise `mov $imm, %reg` followed by a call for the
// __LINE__ heuristic. It does not decode operands beyond that and gives up
// (errUndecodable) on anything it does not know, which callers treat as
// "cannot prove unchanged".

var errUndecodable = errors.New("undecodable instruction")

// insn is one decoded instruction.
type insn struct {
	off    int  // offset of the first byte
	len    int  // total length
	op     int  // opcode; 0x0f00|op for the 0F map, 0x0f3800|op, 0x0f3a00|op
	rex    byte // REX prefix, 0 if none
	modrm  int  // offset of the ModRM byte within the instruction, -1 if none
	immOff int  // offset of the immediate or relative displacement within the instruction
	immLen int
	legacy bool // has a legacy prefix (66, 67, F2, F3, segment, lock)
	vex    bool // VEX or EVEX encoded
}

// Operand kinds of the immediate, by opcode.
const (
	immNone = iota
	immB    // 1 byte
	immW    // 2 bytes
	immZ    // 2 bytes with a 66 prefix, else 4
	immV    // 8 bytes with REX.W, 2 with a 66 prefix, else 4
	immRel  // rel32
	immEnter
	immMoffs
	immGrp3 // F6/F7: immediate only for /0 and /1 (TEST)
	bad     // not valid in 64-bit mode
)

// oneByte describes the one-byte opcode map: whether a ModRM byte follows
// and the immediate kind. Prefix bytes are handled before the lookup.
var oneByte = func() (t [256]struct {
	modrm bool
	imm   int
}) {
	for op := 0; op < 0x40; op++ {
		switch op & 7 {
		case 0, 1, 2, 3:
			t[op].modrm = true
		case 4:
			t[op].imm = immB
		case 5:
			t[op].imm = immZ
		default:
			t[op].imm = bad // push/pop seg, daa, das, aaa, aas; prefixes handled earlier
		}
	}
	set := func(lo, hi int, modrm bool, imm int) {
		for op := lo; op <= hi; op++ {
			t[op].modrm, t[op].imm = modrm, imm
		}
	}
	set(0x0f, 0x0f, false, bad) // escape, handled separately
	set(0x40, 0x5f, false, immNone)
	set(0x60, 0x62, false, bad)
	set(0x63, 0x63, true, immNone)
	set(0x68, 0x68, false, immZ)
	set(0x69, 0x69, true, immZ)
	set(0x6a, 0x6a, false, immB)
	set(0x6b, 0x6b, true, immB)
	set(0x6c, 0x6f, false, immNone)
	set(0x70, 0x7f, false, immB)
	set(0x80, 0x80, true, immB)
	set(0x81, 0x81, true, immZ)
	set(0x82, 0x82, false, bad)
	set(0x83, 0x83, true, immB)
	set(0x84, 0x8f, true, immNone)
	set(0x90, 0x9f, false, immNone)
	set(0x9a, 0x9a, false, bad)
	set(0xa0, 0xa3, false, immMoffs)
	set(0xa4, 0xa7, false, immNone)
	set(0xa8, 0xa8, false, immB)
	set(0xa9, 0xa9, false, immZ)
	set(0xaa, 0xaf, false, immNone)
	set(0xb0, 0xb7, false, immB)
	set(0xb8, 0xbf, false, immV)
	set(0xc0, 0xc1, true, immB)
	set(0xc2, 0xc2, false, immW)
	set(0xc3, 0xc3, false, immNone)
	set(0xc4, 0xc5, false, bad) // VEX, handled separately
	set(0xc6, 0xc6, true, immB)
	set(0xc7, 0xc7, true, immZ)
	set(0xc8, 0xc8, false, immEnter)
	set(0xc9, 0xc9, false, immNone)
	set(0xca, 0xca, false, immW)
	set(0xcb, 0xcc, false, immNone)
	set(0xcd, 0xcd, false, immB)
	set(0xce, 0xce, false, bad)
	set(0xcf, 0xcf, false, immNone)
	set(0xd0, 0xd3, true, immNone)
	set(0xd4, 0xd6, false, bad)
	set(0xd7, 0xd7, false, immNone)
	set(0xd8, 0xdf, true, immNone)
	set(0xe0, 0xe7, false, immB)
	set(0xe8, 0xe9, false, immRel)
	set(0xea, 0xea, false, bad)
	set(0xeb, 0xeb, false, immB)
	set(0xec, 0xef, false, immNone)
	set(0xf1, 0xf1, false, immNone)
	set(0xf4, 0xf5, false, immNone)
	set(0xf6, 0xf7, true, immGrp3)
	set(0xf8, 0xfd, false, immNone)
	set(0xfe, 0xff, true, immNone)
	return t
}()

// twoByte describes the 0F map the same way.
var twoByte = func() (t [256]struct {
	modrm bool
	imm   int
}) {
	for op := range t {
		t[op].modrm = true
	}
	set := func(lo, hi int, modrm bool, imm int) {
		for op := lo; op <= hi; op++ {
			t[op].modrm, t[op].imm = modrm, imm
		}
	}
	set(0x04, 0x04, false, bad)
	set(0x05, 0x09, false, immNone) // syscall, clts, sysret, invd, wbinvd
	set(0x0a, 0x0a, false, bad)
	set(0x0b, 0x0b, false, immNone) // ud2
	set(0x0c, 0x0c, false, bad)
	set(0x0e, 0x0e, false, immNone) // femms
	set(0x0f, 0x0f, true, immB)     // 3DNow!: the opcode is a trailing byte
	set(0x24, 0x27, false, bad)
	set(0x30, 0x35, false, immNone) // wrmsr .. sysexit
	set(0x36, 0x36, false, bad)
	set(0x37, 0x37, false, immNone) // getsec
	set(0x38, 0x38, false, bad)     // three-byte map, handled separately
	set(0x39, 0x39, false, bad)
	set(0x3a, 0x3a, false, bad) // three-byte map, handled separately
	set(0x3b, 0x3f, false, bad)
	set(0x70, 0x73, true, immB)
	set(0x77, 0x77, false, immNone) // emms, vzeroupper
	set(0x7a, 0x7b, false, bad)
	set(0x80, 0x8f, false, immRel)
	set(0xa0, 0xa2, false, immNone) // push fs, pop fs, cpuid
	set(0xa4, 0xa4, true, immB)
	set(0xa6, 0xa7, false, bad)
	set(0xa8, 0xaa, false, immNone) // push gs, pop gs, rsm
	set(0xac, 0xac, true, immB)
	set(0xba, 0xba, true, immB)
	set(0xc2, 0xc2, true, immB)
	set(0xc4, 0xc6, true, immB)
	set(0xc8, 0xcf, false, immNone) // bswap
	return t
}()

// decodeInsn decodes the instruction at code[off:].
func decodeInsn(code []byte, off int) (insn, error) {
	in := insn{off: off, modrm: -1}
	p := off
	end := min(len(code), off+15) // architectural maximum length
	at := func() (byte, error) {
		if p >= end {
			return 0, errUndecodable
		}
		return code[p], nil
	}
	var opsize, addrsize bool
	for {
		b, err := at()
		if err != nil {
			return in, err
		}
		switch b {
		case 0x66:
			opsize = true
		case 0x67:
			addrsize = true
		case 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65:
		default:
			goto prefixesDone
		}
		in.legacy = true
		p++
	}
prefixesDone:
	b, err := at()
	if err != nil {
		return in, err
	}
	if b&0xf0 == 0x40 {
		in.rex = b
		p++
		if b, err = at(); err != nil {
			return in, err
		}
	}
	rexW := in.rex&8 != 0

	var modrm bool
	var imm int
	switch {
	case b == 0xc4 || b == 0xc5 || b == 0x62:
		if in.rex != 0 {
			return in, errUndecodable
		}
		in.vex = true
		var mmmmm byte
		switch b {
		case 0xc5:
			p += 2 // C5, one payload byte
			mmmmm = 1
		case 0xc4:
			if p+1 >= end {
				return in, errUndecodable
			}
			mmmmm = code[p+1] & 0x1f
			p += 3
		case 0x62:
			if p+1 >= end {
				return in, errUndecodable
			}
			mmmmm = code[p+1] & 0x07
			p += 4
		}
		op, err := at()
		if err != nil {
			return in, err
		}
		p++
		switch mmmmm {
		case 1:
			in.op = 0x0f00 | int(op)
			// VEX-encoded two-byte opcodes all take ModRM but vzeroupper/all.
			imm = twoByte[op].imm
			if imm == bad || imm == immRel {
				return in, errUndecodable
			}
			if op == 0x77 {
				modrm = false
			} else {
				modrm = true
			}
		case 2, 5, 6: // 0F38 and the AVX512-FP16 maps: no immediate
			in.op = 0x0f3800 | int(op)
			modrm = true
		case 3:
			in.op = 0x0f3a00 | int(op)
			modrm, imm = true, immB
		default:
			return in, errUndecodable
		}
	case b == 0x0f:
		p++
		op, err := at()
		if err != nil {
			return in, err
		}
		p++
		switch op {
		case 0x38:
			op3, err := at()
			if err != nil {
				return in, err
			}
			p++
			in.op = 0x0f3800 | int(op3)
			modrm = true
		case 0x3a:
			op3, err := at()
			if err != nil {
				return in, err
			}
			p++
			in.op = 0x0f3a00 | int(op3)
			modrm, imm = true, immB
		default:
			in.op = 0x0f00 | int(op)
			modrm, imm = twoByte[op].modrm, twoByte[op].imm
		}
	default:
		p++
		in.op = int(b)
		modrm, imm = oneByte[b].modrm, oneByte[b].imm
		if b == 0x8f && p < end && code[p]&0x38 != 0 {
			return in, errUndecodable // AMD XOP
		}
	}
	if imm == bad {
		return in, errUndecodable
	}

	if modrm {
		m, err := at()
		if err != nil {
			return in, err
		}
		in.modrm = p - off
		p++
		mod, rm := m>>6, m&7
		if mod != 3 {
			if rm == 4 {
				sib, err := at()
				if err != nil {
					return in, err
				}
				p++
				if mod == 0 && sib&7 == 5 {
					p += 4
				}
			}
			switch {
			case mod == 0 && rm == 5:
				p += 4 // RIP-relative
			case mod == 1:
				p++
			case mod == 2:
				p += 4
			}
		}
		if imm == immGrp3 {
			if (m>>3)&7 <= 1 {
				if in.op == 0xf6 {
					imm = immB
				} else {
					imm = immZ
				}
			} else {
				imm = immNone
			}
		}
	} else if imm == immGrp3 {
		return in, errUndecodable
	}

	n := 0
	switch imm {
	case immB:
		n = 1
	case immW:
		n = 2
	case immZ:
		n = 4
		if opsize && !rexW {
			n = 2
		}
	case immV:
		n = 4
		if rexW {
			n = 8
		} else if opsize {
			n = 2
		}
	case immRel:
		n = 4
	case immEnter:
		n = 3
	case immMoffs:
		n = 8
		if addrsize {
			n = 4
		}
	}
	in.immOff, in.immLen = p-off, n
	p += n
	if p > end {
		return in, errUndecodable
	}
	in.len = p - off
	return in, nil
}

// decodeAll decodes code from start to end by linear sweep, which is
// sound for compiler output on x86 (no data in text sections).
func decodeAll(code []byte) ([]insn, error) {
	var out []insn
	for off := 0; off < len(code); {
		in, err := decodeInsn(code, off)
		if err != nil {
			return out, fmt.Errorf("decode at %#x: %w", off, err)
		}
		out = append(out, in)
		off += in.len
	}
	return out, nil
}

// regWritten returns the general-purpose register (0-15, in ModRM
// numbering: 0 rax, 1 rcx, 2 rdx, 6 rsi, 7 rdi, 8 r8, 9 r9) that a simple
// data-movement instruction writes, and whether the instruction is one of
// the few this package knows to have no other effect on registers or
// control flow. Memory stores report reg -1.
func (in insn) regWritten(code []byte) (reg int, ok bool) {
	if in.vex {
		return 0, false
	}
	rexB, rexR := int(in.rex&1)<<3, int(in.rex&4)<<1
	var m byte
	if in.modrm >= 0 {
		m = code[in.off+in.modrm]
	}
	mod, regf, rm := m>>6, int(m>>3)&7, int(m&7)
	switch {
	case in.op >= 0xb8 && in.op <= 0xbf: // mov $imm, r
		return in.op - 0xb8 + rexB, true
	case in.op == 0xc7 && regf == 0: // mov $imm, r/m
		if mod == 3 {
			return rm + rexB, true
		}
		return -1, true
	case in.op == 0x89, in.op == 0x31: // mov/xor r, r/m
		if mod == 3 {
			return rm + rexB, true
		}
		if in.op == 0x89 {
			return -1, true
		}
		return 0, false
	case in.op == 0x8b, in.op == 0x8d, in.op == 0x33, in.op == 0x63,
		in.op == 0x0fb6, in.op == 0x0fb7, in.op == 0x0fbe, in.op == 0x0fbf: // mov, lea, xor, movsx/zx into r
		return regf + rexR, true
	case in.op == 0x90 && in.rex&1 == 0, in.op == 0x0f1f: // nop (41 90 is xchg %eax,%r8d)
		return -1, true
	}
	return 0, false
}

// BlockEnd returns where the straight-line code starting at code[off:]
// ends: just past its first unconditional jump (jmp rel8/rel32) or return.
// Out-of-line code the assembler puts in a section of its own, such as
// the bit test static_cpu_has() places in .altinstr_aux, is made of such
// blocks, one per use.
func BlockEnd(code []byte, off int) (int, error) {
	for off < len(code) {
		in, err := decodeInsn(code, off)
		if err != nil {
			return 0, fmt.Errorf("decode at %#x: %w", off, err)
		}
		off += in.len
		switch in.op {
		case 0xe9, 0xeb, 0xc3, 0xc2:
			return off, nil
		}
	}
	return 0, fmt.Errorf("no jump or return ends the code at %#x", off)
}
