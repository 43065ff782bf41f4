// Empty stand-in for fs/ext4/symlink.c of Linux 6.1.176.
