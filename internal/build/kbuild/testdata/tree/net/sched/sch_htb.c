// Empty stand-in for net/sched/sch_htb.c of Linux 6.1.176.
