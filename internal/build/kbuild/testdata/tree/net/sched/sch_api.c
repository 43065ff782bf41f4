// Empty stand-in for net/sched/sch_api.c of Linux 6.1.176.
