// Empty stand-in for kernel/notifier.c of Linux 6.1.176.
