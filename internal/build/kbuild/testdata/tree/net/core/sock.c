// Empty stand-in for net/core/sock.c of Linux 6.1.176.
