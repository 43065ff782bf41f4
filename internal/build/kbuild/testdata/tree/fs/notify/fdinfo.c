// Empty stand-in for fs/notify/fdinfo.c of Linux 6.1.176.
