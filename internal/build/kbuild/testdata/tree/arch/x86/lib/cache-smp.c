// Empty stand-in for arch/x86/lib/cache-smp.c of Linux 6.1.176.
