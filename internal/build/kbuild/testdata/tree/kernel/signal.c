// Empty stand-in for kernel/signal.c of Linux 6.1.176.
