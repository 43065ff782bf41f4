// Empty stand-in for net/netfilter/nf_conntrack_core.c of Linux 6.1.176.
