// Empty stand-in for lib/lockref.c of Linux 6.1.176.
