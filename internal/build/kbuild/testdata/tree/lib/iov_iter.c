// Empty stand-in for lib/iov_iter.c of Linux 6.1.176.
