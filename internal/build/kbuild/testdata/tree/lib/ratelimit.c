// Empty stand-in for lib/ratelimit.c of Linux 6.1.176.
