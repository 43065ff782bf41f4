// Empty stand-in for kernel/regset.c of Linux 6.1.176.
