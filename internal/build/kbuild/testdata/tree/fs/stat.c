// Empty stand-in for fs/stat.c of Linux 6.1.176.
