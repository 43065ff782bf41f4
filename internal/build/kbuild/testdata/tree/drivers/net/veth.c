// Empty stand-in for drivers/net/veth.c of Linux 6.1.176.
