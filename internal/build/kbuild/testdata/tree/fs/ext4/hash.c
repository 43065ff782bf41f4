// Empty stand-in for fs/ext4/hash.c of Linux 6.1.176.
