// Empty stand-in for drivers/net/macsec.c of Linux 6.1.176.
