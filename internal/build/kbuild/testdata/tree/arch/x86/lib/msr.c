// Empty stand-in for arch/x86/lib/msr.c of Linux 6.1.176.
