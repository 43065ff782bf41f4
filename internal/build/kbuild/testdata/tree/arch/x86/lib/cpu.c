// Empty stand-in for arch/x86/lib/cpu.c of Linux 6.1.176.
