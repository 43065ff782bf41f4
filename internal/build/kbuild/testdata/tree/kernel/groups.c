// Empty stand-in for kernel/groups.c of Linux 6.1.176.
