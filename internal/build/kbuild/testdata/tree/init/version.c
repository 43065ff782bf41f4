// Empty stand-in for init/version.c of Linux 6.1.176.
