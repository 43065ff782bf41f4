// Empty stand-in for net/core/sock_diag.c of Linux 6.1.176.
