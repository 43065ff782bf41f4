// Empty stand-in for net/compat.c of Linux 6.1.176.
