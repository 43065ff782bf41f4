// Empty stand-in for lib/fdt_wip.c of Linux 6.1.176.
