// Empty stand-in for lib/percpu-refcount.c of Linux 6.1.176.
