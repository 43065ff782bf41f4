// Empty stand-in for lib/kfifo.c of Linux 6.1.176.
