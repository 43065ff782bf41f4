// Empty stand-in for lib/idr.c of Linux 6.1.176.
