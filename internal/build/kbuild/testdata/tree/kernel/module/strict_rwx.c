// Empty stand-in for kernel/module/strict_rwx.c of Linux 6.1.176.
