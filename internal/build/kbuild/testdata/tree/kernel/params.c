// Empty stand-in for kernel/params.c of Linux 6.1.176.
