// Empty stand-in for fs/super.c of Linux 6.1.176.
