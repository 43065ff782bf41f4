// Empty stand-in for fs/exec.c of Linux 6.1.176.
