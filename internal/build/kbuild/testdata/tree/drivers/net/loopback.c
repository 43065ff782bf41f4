// Empty stand-in for drivers/net/loopback.c of Linux 6.1.176.
