// Empty stand-in for fs/ext4/mmp.c of Linux 6.1.176.
