// Empty stand-in for fs/char_dev.c of Linux 6.1.176.
