// Empty stand-in for drivers/net/eql.c of Linux 6.1.176.
