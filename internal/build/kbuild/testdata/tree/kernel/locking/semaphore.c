// Empty stand-in for kernel/locking/semaphore.c of Linux 6.1.176.
