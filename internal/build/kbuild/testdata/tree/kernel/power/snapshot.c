// Empty stand-in for kernel/power/snapshot.c of Linux 6.1.176.
