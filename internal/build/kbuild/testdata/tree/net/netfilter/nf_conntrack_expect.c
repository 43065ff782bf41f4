// Empty stand-in for net/netfilter/nf_conntrack_expect.c of Linux 6.1.176.
