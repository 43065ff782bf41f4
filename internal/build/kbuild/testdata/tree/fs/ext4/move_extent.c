// Empty stand-in for fs/ext4/move_extent.c of Linux 6.1.176.
