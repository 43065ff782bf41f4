// Empty stand-in for net/netfilter/nf_queue.c of Linux 6.1.176.
