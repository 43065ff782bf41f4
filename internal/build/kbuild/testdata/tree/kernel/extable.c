// Empty stand-in for kernel/extable.c of Linux 6.1.176.
