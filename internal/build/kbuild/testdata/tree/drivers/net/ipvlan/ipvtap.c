// Empty stand-in for drivers/net/ipvlan/ipvtap.c of Linux 6.1.176.
