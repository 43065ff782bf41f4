// Empty stand-in for lib/debug_locks.c of Linux 6.1.176.
