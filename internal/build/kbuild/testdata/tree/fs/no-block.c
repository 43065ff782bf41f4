// Empty stand-in for fs/no-block.c of Linux 6.1.176.
