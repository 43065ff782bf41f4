// Empty stand-in for arch/x86/lib/csum-wrappers_64.c of Linux 6.1.176.
