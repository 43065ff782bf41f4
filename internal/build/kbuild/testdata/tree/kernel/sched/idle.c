// Empty stand-in for kernel/sched/idle.c of Linux 6.1.176.
