// Empty stand-in for lib/decompress.c of Linux 6.1.176.
