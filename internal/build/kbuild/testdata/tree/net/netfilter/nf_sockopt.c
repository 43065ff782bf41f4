// Empty stand-in for net/netfilter/nf_sockopt.c of Linux 6.1.176.
