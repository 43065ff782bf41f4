// Empty stand-in for fs/ext4/fsmap.c of Linux 6.1.176.
