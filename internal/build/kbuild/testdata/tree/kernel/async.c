// Empty stand-in for kernel/async.c of Linux 6.1.176.
