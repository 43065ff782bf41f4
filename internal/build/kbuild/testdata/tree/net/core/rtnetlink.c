// Empty stand-in for net/core/rtnetlink.c of Linux 6.1.176.
