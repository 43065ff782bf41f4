// Empty stand-in for lib/cmdline.c of Linux 6.1.176.
