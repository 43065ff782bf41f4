// Empty stand-in for drivers/net/wireguard/peer.c of Linux 6.1.176.
