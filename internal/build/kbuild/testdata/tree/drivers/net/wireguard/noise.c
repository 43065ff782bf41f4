// Empty stand-in for drivers/net/wireguard/noise.c of Linux 6.1.176.
