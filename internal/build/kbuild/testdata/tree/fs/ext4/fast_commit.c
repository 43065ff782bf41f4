// Empty stand-in for fs/ext4/fast_commit.c of Linux 6.1.176.
