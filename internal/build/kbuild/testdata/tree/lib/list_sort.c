// Empty stand-in for lib/list_sort.c of Linux 6.1.176.
