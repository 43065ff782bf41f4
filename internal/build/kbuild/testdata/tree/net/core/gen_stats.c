// Empty stand-in for net/core/gen_stats.c of Linux 6.1.176.
