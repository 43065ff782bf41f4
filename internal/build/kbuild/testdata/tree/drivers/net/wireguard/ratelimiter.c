// Empty stand-in for drivers/net/wireguard/ratelimiter.c of Linux 6.1.176.
