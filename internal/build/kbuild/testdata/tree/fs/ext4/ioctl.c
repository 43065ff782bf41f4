// Empty stand-in for fs/ext4/ioctl.c of Linux 6.1.176.
