// Empty stand-in for fs/ext4/verity.c of Linux 6.1.176.
