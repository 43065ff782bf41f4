// Empty stand-in for kernel/exit.c of Linux 6.1.176.
