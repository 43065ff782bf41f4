// Empty stand-in for kernel/module/tree_lookup.c of Linux 6.1.176.
