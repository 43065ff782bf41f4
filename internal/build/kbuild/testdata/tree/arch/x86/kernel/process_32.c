// Empty stand-in for arch/x86/kernel/process_32.c of Linux 6.1.176.
