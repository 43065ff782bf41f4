// Empty stand-in for kernel/umh.c of Linux 6.1.176.
