// Empty stand-in for kernel/capability.c of Linux 6.1.176.
