// Empty stand-in for kernel/sched/cputime.c of Linux 6.1.176.
