// Empty stand-in for kernel/locking/lockdep_proc.c of Linux 6.1.176.
