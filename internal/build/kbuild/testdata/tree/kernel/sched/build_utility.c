// Empty stand-in for kernel/sched/build_utility.c of Linux 6.1.176.
