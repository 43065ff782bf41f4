// Empty stand-in for net/core/sock_reuseport.c of Linux 6.1.176.
