// Empty stand-in for fs/ext4/xattr_user.c of Linux 6.1.176.
