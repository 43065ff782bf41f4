// Empty stand-in for kernel/module/main.c of Linux 6.1.176.
