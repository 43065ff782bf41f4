// Empty stand-in for fs/open.c of Linux 6.1.176.
