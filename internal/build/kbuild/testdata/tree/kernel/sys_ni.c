// Empty stand-in for kernel/sys_ni.c of Linux 6.1.176.
