// Empty stand-in for lib/zlib_inflate/inffast.c of Linux 6.1.176.
