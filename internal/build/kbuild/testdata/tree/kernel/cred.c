// Empty stand-in for kernel/cred.c of Linux 6.1.176.
