// Empty stand-in for kernel/pid.c of Linux 6.1.176.
