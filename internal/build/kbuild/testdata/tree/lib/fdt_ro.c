// Empty stand-in for lib/fdt_ro.c of Linux 6.1.176.
