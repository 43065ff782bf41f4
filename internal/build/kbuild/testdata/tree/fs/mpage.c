// Empty stand-in for fs/mpage.c of Linux 6.1.176.
