// Empty stand-in for kernel/power/hibernate.c of Linux 6.1.176.
