// Empty stand-in for arch/x86/kernel/sys_ia32.c of Linux 6.1.176.
