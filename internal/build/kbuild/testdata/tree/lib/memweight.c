// Empty stand-in for lib/memweight.c of Linux 6.1.176.
