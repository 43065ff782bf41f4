// Empty stand-in for lib/llist.c of Linux 6.1.176.
