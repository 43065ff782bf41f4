// Empty stand-in for kernel/module/decompress.c of Linux 6.1.176.
