// Empty stand-in for drivers/net/wireguard/cookie.c of Linux 6.1.176.
