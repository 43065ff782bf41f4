// Empty stand-in for fs/notify/notification.c of Linux 6.1.176.
