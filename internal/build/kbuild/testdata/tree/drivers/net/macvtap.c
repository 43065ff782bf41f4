// Empty stand-in for drivers/net/macvtap.c of Linux 6.1.176.
