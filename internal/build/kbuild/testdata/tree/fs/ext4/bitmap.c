// Empty stand-in for fs/ext4/bitmap.c of Linux 6.1.176.
