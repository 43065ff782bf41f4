// Empty stand-in for arch/x86/lib/inat.c of Linux 6.1.176.
