// Empty stand-in for kernel/softirq.c of Linux 6.1.176.
