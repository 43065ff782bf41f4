// Empty stand-in for lib/dec_and_lock.c of Linux 6.1.176.
