// Empty stand-in for kernel/locking/rwsem.c of Linux 6.1.176.
