// Empty stand-in for drivers/net/wireguard/socket.c of Linux 6.1.176.
