// Empty stand-in for net/netfilter/nf_conntrack_timeout.c of Linux 6.1.176.
