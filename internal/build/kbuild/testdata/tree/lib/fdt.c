// Empty stand-in for lib/fdt.c of Linux 6.1.176.
