// Empty stand-in for fs/notify/dnotify/dnotify.c of Linux 6.1.176.
