// Empty stand-in for fs/ext4/inode.c of Linux 6.1.176.
