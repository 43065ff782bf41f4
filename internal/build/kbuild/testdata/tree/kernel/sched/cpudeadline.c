// Empty stand-in for kernel/sched/cpudeadline.c of Linux 6.1.176.
