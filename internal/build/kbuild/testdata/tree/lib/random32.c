// Empty stand-in for lib/random32.c of Linux 6.1.176.
