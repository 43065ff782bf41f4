// Empty stand-in for kernel/fork.c of Linux 6.1.176.
