// Empty stand-in for net/core/stream.c of Linux 6.1.176.
