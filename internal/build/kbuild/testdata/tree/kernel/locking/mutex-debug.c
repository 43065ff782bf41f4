// Empty stand-in for kernel/locking/mutex-debug.c of Linux 6.1.176.
