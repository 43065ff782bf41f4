// Empty stand-in for net/sched/sch_mq.c of Linux 6.1.176.
