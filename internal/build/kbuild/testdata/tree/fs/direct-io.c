// Empty stand-in for fs/direct-io.c of Linux 6.1.176.
