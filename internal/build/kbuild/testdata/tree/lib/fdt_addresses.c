// Empty stand-in for lib/fdt_addresses.c of Linux 6.1.176.
