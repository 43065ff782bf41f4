// Empty stand-in for fs/ext4/page-io.c of Linux 6.1.176.
