// Empty stand-in for drivers/net/wireguard/timers.c of Linux 6.1.176.
