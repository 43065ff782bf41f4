// Empty stand-in for lib/zlib_inflate/infutil.c of Linux 6.1.176.
