// Empty stand-in for fs/ext4/block_validity.c of Linux 6.1.176.
