// Empty stand-in for kernel/reboot.c of Linux 6.1.176.
