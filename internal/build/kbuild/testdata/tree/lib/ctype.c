// Empty stand-in for lib/ctype.c of Linux 6.1.176.
