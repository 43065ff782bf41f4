// Empty stand-in for kernel/smpboot.c of Linux 6.1.176.
