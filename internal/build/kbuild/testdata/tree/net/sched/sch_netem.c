// Empty stand-in for net/sched/sch_netem.c of Linux 6.1.176.
