// Empty stand-in for lib/fdt_sw.c of Linux 6.1.176.
