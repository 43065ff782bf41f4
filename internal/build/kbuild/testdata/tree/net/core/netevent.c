// Empty stand-in for net/core/netevent.c of Linux 6.1.176.
