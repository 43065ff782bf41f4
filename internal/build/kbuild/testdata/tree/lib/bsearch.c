// Empty stand-in for lib/bsearch.c of Linux 6.1.176.
