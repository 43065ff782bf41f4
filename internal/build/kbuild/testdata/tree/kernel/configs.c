// Empty stand-in for kernel/configs.c of Linux 6.1.176.
