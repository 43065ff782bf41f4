// Empty stand-in for kernel/locking/spinlock.c of Linux 6.1.176.
