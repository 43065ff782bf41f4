// Empty stand-in for kernel/power/console.c of Linux 6.1.176.
