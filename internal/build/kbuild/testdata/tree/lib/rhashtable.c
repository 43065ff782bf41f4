// Empty stand-in for lib/rhashtable.c of Linux 6.1.176.
