// Empty stand-in for arch/x86/kernel/signal.c of Linux 6.1.176.
