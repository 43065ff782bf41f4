// Empty stand-in for lib/win_minmax.c of Linux 6.1.176.
