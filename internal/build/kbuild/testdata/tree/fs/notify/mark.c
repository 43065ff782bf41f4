// Empty stand-in for fs/notify/mark.c of Linux 6.1.176.
