// Empty stand-in for lib/maple_tree.c of Linux 6.1.176.
