// Empty stand-in for lib/is_single_threaded.c of Linux 6.1.176.
