// Empty stand-in for fs/ext4/readpage.c of Linux 6.1.176.
