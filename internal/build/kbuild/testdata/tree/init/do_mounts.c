// Empty stand-in for init/do_mounts.c of Linux 6.1.176.
