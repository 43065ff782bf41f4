// Empty stand-in for fs/ext4/orphan.c of Linux 6.1.176.
