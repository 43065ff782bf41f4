// Empty stand-in for kernel/sched/pelt.c of Linux 6.1.176.
