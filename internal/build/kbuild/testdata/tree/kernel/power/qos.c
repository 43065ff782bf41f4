// Empty stand-in for kernel/power/qos.c of Linux 6.1.176.
