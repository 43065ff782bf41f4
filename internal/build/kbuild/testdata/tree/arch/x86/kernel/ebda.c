// Empty stand-in for arch/x86/kernel/ebda.c of Linux 6.1.176.
