// Empty stand-in for kernel/sys.c of Linux 6.1.176.
