// Empty stand-in for net/core/net-procfs.c of Linux 6.1.176.
