// Empty stand-in for lib/clz_ctz.c of Linux 6.1.176.
