// Empty stand-in for net/core/dev_ioctl.c of Linux 6.1.176.
