// Empty stand-in for lib/fdt_empty_tree.c of Linux 6.1.176.
