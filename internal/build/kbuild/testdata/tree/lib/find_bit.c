// Empty stand-in for lib/find_bit.c of Linux 6.1.176.
