// Empty stand-in for net/netfilter/nfnetlink.c of Linux 6.1.176.
