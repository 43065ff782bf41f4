// Empty stand-in for drivers/net/ifb.c of Linux 6.1.176.
