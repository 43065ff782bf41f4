// Empty stand-in for lib/bust_spinlocks.c of Linux 6.1.176.
