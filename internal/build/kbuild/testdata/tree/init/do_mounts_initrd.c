// Empty stand-in for init/do_mounts_initrd.c of Linux 6.1.176.
