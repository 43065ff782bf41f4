// Empty stand-in for kernel/power/process.c of Linux 6.1.176.
