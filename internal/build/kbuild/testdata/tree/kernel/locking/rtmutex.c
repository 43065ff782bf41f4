// Empty stand-in for kernel/locking/rtmutex.c of Linux 6.1.176.
