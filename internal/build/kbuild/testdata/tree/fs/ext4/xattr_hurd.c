// Empty stand-in for fs/ext4/xattr_hurd.c of Linux 6.1.176.
