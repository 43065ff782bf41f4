// Empty stand-in for fs/ext4/fsync.c of Linux 6.1.176.
