// Empty stand-in for arch/x86/lib/insn-eval.c of Linux 6.1.176.
