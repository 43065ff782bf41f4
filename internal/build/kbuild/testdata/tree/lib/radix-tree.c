// Empty stand-in for lib/radix-tree.c of Linux 6.1.176.
