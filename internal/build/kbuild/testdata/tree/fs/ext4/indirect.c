// Empty stand-in for fs/ext4/indirect.c of Linux 6.1.176.
