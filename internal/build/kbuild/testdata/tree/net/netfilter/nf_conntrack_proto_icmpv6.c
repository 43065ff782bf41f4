// Empty stand-in for net/netfilter/nf_conntrack_proto_icmpv6.c of Linux 6.1.176.
