// Empty stand-in for kernel/ptrace.c of Linux 6.1.176.
