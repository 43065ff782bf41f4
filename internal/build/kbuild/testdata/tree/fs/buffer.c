// Empty stand-in for fs/buffer.c of Linux 6.1.176.
