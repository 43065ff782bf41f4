// Empty stand-in for kernel/kexec_core.c of Linux 6.1.176.
