// Empty stand-in for fs/notify/fsnotify.c of Linux 6.1.176.
