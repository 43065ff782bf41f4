// Empty stand-in for lib/bitmap.c of Linux 6.1.176.
