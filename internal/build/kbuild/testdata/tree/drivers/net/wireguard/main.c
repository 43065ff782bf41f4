// Empty stand-in for drivers/net/wireguard/main.c of Linux 6.1.176.
