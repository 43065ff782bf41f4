// Empty stand-in for kernel/power/swap.c of Linux 6.1.176.
