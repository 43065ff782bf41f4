/* Alternatives laid out as Linux 6.3 and later lay them out (struct
 * alt_instr: s32 instr_offset, s32 repl_offset, u32 ft_flags, u8 instrlen,
 * u8 replacementlen: 14 bytes). Six entries make 84 bytes, which 12-byte
 * entries would split too. */
#define ALT(oldinstr, newinstr, ft)				\
	"661:\n\t" oldinstr "\n662:\n"				\
	".pushsection .altinstructions,\"a\"\n"			\
	" .long 661b - .\n"					\
	" .long 6641f - .\n"					\
	" .4byte " #ft "\n"					\
	" .byte 662b-661b\n"					\
	" .byte 6651f-6641f\n"					\
	".popsection\n"						\
	".pushsection .altinstr_replacement, \"ax\"\n"		\
	"6641:\n\t" newinstr "\n6651:\n"			\
	".popsection\n"

#define FN(name, n, newinstr)						\
	int name(int x)							\
	{								\
		asm volatile(ALT("nop", newinstr, 0x1230##n) ::: "memory"); \
		return x + n;						\
	}

FN(alt1, 1, "pause")
FN(alt2, 2, "lfence")
FN(alt3, 3, "mfence")
FN(alt4, 4, "sfence")
FN(alt5, 5, "pause; pause")
FN(alt6, 6, "lfence; lfence")
