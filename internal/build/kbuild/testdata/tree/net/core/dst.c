// Empty stand-in for net/core/dst.c of Linux 6.1.176.
