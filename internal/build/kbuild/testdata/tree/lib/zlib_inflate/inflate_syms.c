// Empty stand-in for lib/zlib_inflate/inflate_syms.c of Linux 6.1.176.
