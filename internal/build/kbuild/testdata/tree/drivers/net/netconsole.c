// Empty stand-in for drivers/net/netconsole.c of Linux 6.1.176.
