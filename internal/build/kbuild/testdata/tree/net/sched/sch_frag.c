// Empty stand-in for net/sched/sch_frag.c of Linux 6.1.176.
