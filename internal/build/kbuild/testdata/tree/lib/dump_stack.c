// Empty stand-in for lib/dump_stack.c of Linux 6.1.176.
