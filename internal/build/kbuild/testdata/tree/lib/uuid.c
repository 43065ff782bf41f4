// Empty stand-in for lib/uuid.c of Linux 6.1.176.
