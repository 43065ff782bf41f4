// Empty stand-in for drivers/net/mdio.c of Linux 6.1.176.
