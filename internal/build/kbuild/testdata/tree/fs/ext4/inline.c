// Empty stand-in for fs/ext4/inline.c of Linux 6.1.176.
