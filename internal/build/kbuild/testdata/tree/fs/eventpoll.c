// Empty stand-in for fs/eventpoll.c of Linux 6.1.176.
