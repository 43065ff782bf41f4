// Empty stand-in for net/netfilter/utils.c of Linux 6.1.176.
