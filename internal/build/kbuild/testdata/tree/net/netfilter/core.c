// Empty stand-in for net/netfilter/core.c of Linux 6.1.176.
