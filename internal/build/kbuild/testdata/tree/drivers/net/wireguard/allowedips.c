// Empty stand-in for drivers/net/wireguard/allowedips.c of Linux 6.1.176.
