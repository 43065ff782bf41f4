// Empty stand-in for net/core/net_namespace.c of Linux 6.1.176.
