// Empty stand-in for kernel/locking/spinlock_rt.c of Linux 6.1.176.
