// Empty stand-in for lib/generic-radix-tree.c of Linux 6.1.176.
