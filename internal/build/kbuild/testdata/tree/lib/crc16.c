// Empty stand-in for lib/crc16.c of Linux 6.1.176.
