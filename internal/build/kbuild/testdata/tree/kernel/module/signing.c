// Empty stand-in for kernel/module/signing.c of Linux 6.1.176.
