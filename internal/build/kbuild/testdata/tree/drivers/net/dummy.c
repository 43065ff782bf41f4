// Empty stand-in for drivers/net/dummy.c of Linux 6.1.176.
