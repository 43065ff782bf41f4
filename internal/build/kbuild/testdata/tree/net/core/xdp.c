// Empty stand-in for net/core/xdp.c of Linux 6.1.176.
