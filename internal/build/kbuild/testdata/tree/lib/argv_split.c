// Empty stand-in for lib/argv_split.c of Linux 6.1.176.
