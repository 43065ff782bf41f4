// Empty stand-in for arch/x86/kernel/sys_x86_64.c of Linux 6.1.176.
