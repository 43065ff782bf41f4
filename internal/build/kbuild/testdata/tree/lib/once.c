// Empty stand-in for lib/once.c of Linux 6.1.176.
