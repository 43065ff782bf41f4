// Empty stand-in for fs/ext4/dir.c of Linux 6.1.176.
