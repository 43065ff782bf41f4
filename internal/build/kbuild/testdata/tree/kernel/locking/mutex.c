// Empty stand-in for kernel/locking/mutex.c of Linux 6.1.176.
