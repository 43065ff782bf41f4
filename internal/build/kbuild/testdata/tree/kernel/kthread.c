// Empty stand-in for kernel/kthread.c of Linux 6.1.176.
