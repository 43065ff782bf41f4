// Empty stand-in for net/core/utils.c of Linux 6.1.176.
