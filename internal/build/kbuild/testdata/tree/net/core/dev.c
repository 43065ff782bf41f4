// Empty stand-in for net/core/dev.c of Linux 6.1.176.
