// Empty stand-in for kernel/locking/percpu-rwsem.c of Linux 6.1.176.
