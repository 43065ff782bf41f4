// Empty stand-in for drivers/net/ipvlan/ipvlan_l3s.c of Linux 6.1.176.
