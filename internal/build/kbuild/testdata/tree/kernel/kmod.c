// Empty stand-in for kernel/kmod.c of Linux 6.1.176.
