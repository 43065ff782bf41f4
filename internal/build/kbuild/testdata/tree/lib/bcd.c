// Empty stand-in for lib/bcd.c of Linux 6.1.176.
