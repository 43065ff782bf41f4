// Empty stand-in for fs/ext4/namei.c of Linux 6.1.176.
