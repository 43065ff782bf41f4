// Empty stand-in for net/core/request_sock.c of Linux 6.1.176.
