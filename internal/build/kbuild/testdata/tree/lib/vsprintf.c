// Empty stand-in for lib/vsprintf.c of Linux 6.1.176.
