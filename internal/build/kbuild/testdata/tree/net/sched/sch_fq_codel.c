// Empty stand-in for net/sched/sch_fq_codel.c of Linux 6.1.176.
