// Empty stand-in for fs/ext4/xattr_trusted.c of Linux 6.1.176.
