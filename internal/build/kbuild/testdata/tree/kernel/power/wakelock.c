// Empty stand-in for kernel/power/wakelock.c of Linux 6.1.176.
