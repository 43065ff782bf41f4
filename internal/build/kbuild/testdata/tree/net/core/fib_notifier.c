// Empty stand-in for net/core/fib_notifier.c of Linux 6.1.176.
