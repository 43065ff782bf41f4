// Empty stand-in for lib/parser.c of Linux 6.1.176.
