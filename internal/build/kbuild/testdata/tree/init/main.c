// Empty stand-in for init/main.c of Linux 6.1.176.
