// Empty stand-in for kernel/locking/lockdep.c of Linux 6.1.176.
