// Empty stand-in for fs/ext4/acl.c of Linux 6.1.176.
