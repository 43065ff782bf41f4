// Empty stand-in for lib/kasprintf.c of Linux 6.1.176.
