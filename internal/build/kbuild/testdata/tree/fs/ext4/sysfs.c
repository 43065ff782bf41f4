// Empty stand-in for fs/ext4/sysfs.c of Linux 6.1.176.
