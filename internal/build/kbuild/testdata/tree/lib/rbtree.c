// Empty stand-in for lib/rbtree.c of Linux 6.1.176.
