// Empty stand-in for arch/x86/kernel/platform-quirks.c of Linux 6.1.176.
