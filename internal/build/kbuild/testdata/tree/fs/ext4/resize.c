// Empty stand-in for fs/ext4/resize.c of Linux 6.1.176.
