// Empty stand-in for net/core/dev_addr_lists_test.c of Linux 6.1.176.
