// Empty stand-in for lib/crc64.c of Linux 6.1.176.
