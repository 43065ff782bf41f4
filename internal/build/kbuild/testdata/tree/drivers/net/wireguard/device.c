// Empty stand-in for drivers/net/wireguard/device.c of Linux 6.1.176.
