// Empty stand-in for drivers/net/wireguard/receive.c of Linux 6.1.176.
