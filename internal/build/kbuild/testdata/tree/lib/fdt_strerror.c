// Empty stand-in for lib/fdt_strerror.c of Linux 6.1.176.
