// Empty stand-in for lib/refcount.c of Linux 6.1.176.
