// Empty stand-in for kernel/sched/core.c of Linux 6.1.176.
