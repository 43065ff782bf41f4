// Empty stand-in for kernel/kheaders.c of Linux 6.1.176.
