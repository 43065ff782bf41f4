// Empty stand-in for lib/flex_proportions.c of Linux 6.1.176.
