// Empty stand-in for net/netfilter/nf_conntrack_proto_udp.c of Linux 6.1.176.
