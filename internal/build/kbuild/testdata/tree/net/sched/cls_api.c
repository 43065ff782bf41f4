// Empty stand-in for net/sched/cls_api.c of Linux 6.1.176.
