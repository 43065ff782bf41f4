// Empty stand-in for net/core/page_pool.c of Linux 6.1.176.
