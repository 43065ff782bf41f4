// Empty stand-in for init/initramfs.c of Linux 6.1.176.
