// Empty stand-in for arch/x86/lib/strstr_32.c of Linux 6.1.176.
