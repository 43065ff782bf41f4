// Empty stand-in for fs/proc_namespace.c of Linux 6.1.176.
