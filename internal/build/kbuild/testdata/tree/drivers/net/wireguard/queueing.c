// Empty stand-in for drivers/net/wireguard/queueing.c of Linux 6.1.176.
