// Empty stand-in for net/core/filter.c of Linux 6.1.176.
