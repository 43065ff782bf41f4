// Empty stand-in for kernel/ksysfs.c of Linux 6.1.176.
