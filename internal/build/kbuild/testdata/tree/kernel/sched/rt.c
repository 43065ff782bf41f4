// Empty stand-in for kernel/sched/rt.c of Linux 6.1.176.
