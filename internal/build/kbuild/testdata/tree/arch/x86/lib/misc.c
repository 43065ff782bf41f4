// Empty stand-in for arch/x86/lib/misc.c of Linux 6.1.176.
