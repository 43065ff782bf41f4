// Empty stand-in for fs/ext4/balloc.c of Linux 6.1.176.
