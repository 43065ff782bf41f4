// Empty stand-in for drivers/net/ipvlan/ipvlan_core.c of Linux 6.1.176.
