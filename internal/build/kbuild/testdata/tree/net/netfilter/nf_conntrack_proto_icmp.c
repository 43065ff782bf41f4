// Empty stand-in for net/netfilter/nf_conntrack_proto_icmp.c of Linux 6.1.176.
