/* no arch/x86/include/generated/asm/fallback.h: a tree not prepared */
