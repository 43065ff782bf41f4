// Empty stand-in for kernel/power/suspend.c of Linux 6.1.176.
