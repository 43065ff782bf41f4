// Empty stand-in for fs/ext4/ialloc.c of Linux 6.1.176.
