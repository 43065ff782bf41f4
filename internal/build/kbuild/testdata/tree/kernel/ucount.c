// Empty stand-in for kernel/ucount.c of Linux 6.1.176.
