// Empty stand-in for lib/sort.c of Linux 6.1.176.
