// Empty stand-in for lib/usercopy.c of Linux 6.1.176.
