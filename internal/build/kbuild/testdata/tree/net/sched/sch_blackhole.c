// Empty stand-in for net/sched/sch_blackhole.c of Linux 6.1.176.
