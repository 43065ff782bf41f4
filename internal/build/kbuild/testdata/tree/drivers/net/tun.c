// Empty stand-in for drivers/net/tun.c of Linux 6.1.176.
