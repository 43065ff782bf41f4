// Empty stand-in for lib/crc-ccitt.c of Linux 6.1.176.
