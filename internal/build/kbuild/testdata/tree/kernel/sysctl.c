// Empty stand-in for kernel/sysctl.c of Linux 6.1.176.
