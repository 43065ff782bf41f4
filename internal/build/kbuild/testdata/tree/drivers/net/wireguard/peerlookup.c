// Empty stand-in for drivers/net/wireguard/peerlookup.c of Linux 6.1.176.
