// Empty stand-in for drivers/net/wireguard/netlink.c of Linux 6.1.176.
