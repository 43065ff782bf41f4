// Empty stand-in for lib/kobject.c of Linux 6.1.176.
