// Empty stand-in for kernel/panic.c of Linux 6.1.176.
