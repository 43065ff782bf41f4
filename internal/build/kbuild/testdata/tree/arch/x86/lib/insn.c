// Empty stand-in for arch/x86/lib/insn.c of Linux 6.1.176.
