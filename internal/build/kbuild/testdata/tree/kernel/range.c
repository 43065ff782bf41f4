// Empty stand-in for kernel/range.c of Linux 6.1.176.
