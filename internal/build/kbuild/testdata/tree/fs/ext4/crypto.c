// Empty stand-in for fs/ext4/crypto.c of Linux 6.1.176.
