// Empty stand-in for fs/fcntl.c of Linux 6.1.176.
