// Empty stand-in for kernel/sched/fair.c of Linux 6.1.176.
