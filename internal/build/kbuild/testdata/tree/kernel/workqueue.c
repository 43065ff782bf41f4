// Empty stand-in for kernel/workqueue.c of Linux 6.1.176.
