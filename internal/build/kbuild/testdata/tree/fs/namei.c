// Empty stand-in for fs/namei.c of Linux 6.1.176.
