// Empty stand-in for net/core/net-sysfs.c of Linux 6.1.176.
