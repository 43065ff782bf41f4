// Empty stand-in for net/core/skbuff.c of Linux 6.1.176.
