// Empty stand-in for lib/fdt_rw.c of Linux 6.1.176.
