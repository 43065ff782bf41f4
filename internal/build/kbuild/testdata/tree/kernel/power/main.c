// Empty stand-in for kernel/power/main.c of Linux 6.1.176.
