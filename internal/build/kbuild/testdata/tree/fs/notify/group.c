// Empty stand-in for fs/notify/group.c of Linux 6.1.176.
