// Empty stand-in for kernel/resource.c of Linux 6.1.176.
