// Empty stand-in for arch/x86/kernel/head64.c of Linux 6.1.176.
