// Empty stand-in for net/core/datagram.c of Linux 6.1.176.
