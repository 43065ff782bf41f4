// Empty stand-in for init/noinitramfs.c of Linux 6.1.176.
