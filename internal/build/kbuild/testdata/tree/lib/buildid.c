// Empty stand-in for lib/buildid.c of Linux 6.1.176.
