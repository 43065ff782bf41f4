// Empty stand-in for lib/earlycpio.c of Linux 6.1.176.
