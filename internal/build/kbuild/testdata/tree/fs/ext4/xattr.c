// Empty stand-in for fs/ext4/xattr.c of Linux 6.1.176.
