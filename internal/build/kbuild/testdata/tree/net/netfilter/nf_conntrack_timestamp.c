// Empty stand-in for net/netfilter/nf_conntrack_timestamp.c of Linux 6.1.176.
