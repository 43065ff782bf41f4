// Empty stand-in for kernel/power/autosleep.c of Linux 6.1.176.
