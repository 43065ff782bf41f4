// Empty stand-in for net/core/sysctl_net_core.c of Linux 6.1.176.
