// Empty stand-in for lib/zlib_inflate/inftrees.c of Linux 6.1.176.
