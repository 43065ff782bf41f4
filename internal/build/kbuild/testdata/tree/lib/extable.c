// Empty stand-in for lib/extable.c of Linux 6.1.176.
