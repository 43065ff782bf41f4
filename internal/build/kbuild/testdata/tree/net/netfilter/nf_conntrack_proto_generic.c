// Empty stand-in for net/netfilter/nf_conntrack_proto_generic.c of Linux 6.1.176.
