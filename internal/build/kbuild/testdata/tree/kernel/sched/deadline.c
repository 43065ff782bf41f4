// Empty stand-in for kernel/sched/deadline.c of Linux 6.1.176.
