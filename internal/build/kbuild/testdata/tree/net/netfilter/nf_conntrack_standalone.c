// Empty stand-in for net/netfilter/nf_conntrack_standalone.c of Linux 6.1.176.
