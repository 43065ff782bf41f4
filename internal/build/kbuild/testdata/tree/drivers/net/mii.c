// Empty stand-in for drivers/net/mii.c of Linux 6.1.176.
