// Empty stand-in for fs/pipe.c of Linux 6.1.176.
