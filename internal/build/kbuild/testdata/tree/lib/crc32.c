// Empty stand-in for lib/crc32.c of Linux 6.1.176.
