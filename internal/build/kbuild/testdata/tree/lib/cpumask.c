// Empty stand-in for lib/cpumask.c of Linux 6.1.176.
