// Empty stand-in for fs/ext4/mballoc.c of Linux 6.1.176.
