// Empty stand-in for fs/ext4/file.c of Linux 6.1.176.
