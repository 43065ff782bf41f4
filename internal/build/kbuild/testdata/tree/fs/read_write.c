// Empty stand-in for fs/read_write.c of Linux 6.1.176.
