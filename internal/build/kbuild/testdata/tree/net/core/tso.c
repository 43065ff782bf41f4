// Empty stand-in for net/core/tso.c of Linux 6.1.176.
