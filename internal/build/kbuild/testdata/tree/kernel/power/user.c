// Empty stand-in for kernel/power/user.c of Linux 6.1.176.
