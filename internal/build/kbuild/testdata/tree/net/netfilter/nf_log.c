// Empty stand-in for net/netfilter/nf_log.c of Linux 6.1.176.
