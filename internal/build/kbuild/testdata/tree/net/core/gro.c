// Empty stand-in for net/core/gro.c of Linux 6.1.176.
