// Empty stand-in for net/netfilter/nf_conntrack_helper.c of Linux 6.1.176.
