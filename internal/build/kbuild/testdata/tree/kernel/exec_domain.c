// Empty stand-in for kernel/exec_domain.c of Linux 6.1.176.
