// Empty stand-in for lib/timerqueue.c of Linux 6.1.176.
