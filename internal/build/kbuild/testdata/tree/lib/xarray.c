// Empty stand-in for lib/xarray.c of Linux 6.1.176.
