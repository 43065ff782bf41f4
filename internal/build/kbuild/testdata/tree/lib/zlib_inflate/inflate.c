// Empty stand-in for lib/zlib_inflate/inflate.c of Linux 6.1.176.
