// Empty stand-in for arch/x86/kernel/head32.c of Linux 6.1.176.
