// Empty stand-in for lib/plist.c of Linux 6.1.176.
