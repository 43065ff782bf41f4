// Empty stand-in for lib/bucket_locks.c of Linux 6.1.176.
