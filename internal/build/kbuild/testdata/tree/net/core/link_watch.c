// Empty stand-in for net/core/link_watch.c of Linux 6.1.176.
