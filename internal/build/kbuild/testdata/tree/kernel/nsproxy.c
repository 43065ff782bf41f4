// Empty stand-in for kernel/nsproxy.c of Linux 6.1.176.
