// Empty stand-in for net/socket.c of Linux 6.1.176.
