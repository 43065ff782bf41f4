// Empty stand-in for fs/notify/inotify/inotify_user.c of Linux 6.1.176.
