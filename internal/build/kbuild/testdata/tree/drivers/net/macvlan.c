// Empty stand-in for drivers/net/macvlan.c of Linux 6.1.176.
