// Empty stand-in for lib/siphash.c of Linux 6.1.176.
