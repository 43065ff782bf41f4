// Empty stand-in for lib/memcat_p.c of Linux 6.1.176.
