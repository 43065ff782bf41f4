// Empty stand-in for lib/scatterlist.c of Linux 6.1.176.
