// Empty stand-in for lib/string.c of Linux 6.1.176.
