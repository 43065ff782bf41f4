// Empty stand-in for net/core/neighbour.c of Linux 6.1.176.
