// Empty stand-in for drivers/net/tap.c of Linux 6.1.176.
