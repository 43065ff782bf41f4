// Empty stand-in for drivers/net/wireguard/send.c of Linux 6.1.176.
