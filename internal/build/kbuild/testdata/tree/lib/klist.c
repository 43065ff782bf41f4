// Empty stand-in for lib/klist.c of Linux 6.1.176.
