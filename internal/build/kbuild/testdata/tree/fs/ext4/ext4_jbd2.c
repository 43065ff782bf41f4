// Empty stand-in for fs/ext4/ext4_jbd2.c of Linux 6.1.176.
