// Empty stand-in for arch/x86/lib/csum-partial_64.c of Linux 6.1.176.
