// Empty stand-in for kernel/cpu.c of Linux 6.1.176.
