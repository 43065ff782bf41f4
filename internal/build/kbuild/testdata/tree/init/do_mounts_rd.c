// Empty stand-in for init/do_mounts_rd.c of Linux 6.1.176.
