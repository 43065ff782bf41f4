// Empty stand-in for fs/ext4/inode-test.c of Linux 6.1.176.
