// Empty stand-in for kernel/user.c of Linux 6.1.176.
