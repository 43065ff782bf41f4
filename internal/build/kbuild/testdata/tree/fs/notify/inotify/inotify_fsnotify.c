// Empty stand-in for fs/notify/inotify/inotify_fsnotify.c of Linux 6.1.176.
