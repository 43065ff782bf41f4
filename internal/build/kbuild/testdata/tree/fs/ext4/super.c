// Empty stand-in for fs/ext4/super.c of Linux 6.1.176.
