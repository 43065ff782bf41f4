// Empty stand-in for fs/ext4/extents_status.c of Linux 6.1.176.
