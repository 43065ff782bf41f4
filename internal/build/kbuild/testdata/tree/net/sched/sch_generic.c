// Empty stand-in for net/sched/sch_generic.c of Linux 6.1.176.
