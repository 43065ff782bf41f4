// Empty stand-in for drivers/net/ipvlan/ipvlan_main.c of Linux 6.1.176.
