// Empty stand-in for fs/ext4/extents.c of Linux 6.1.176.
