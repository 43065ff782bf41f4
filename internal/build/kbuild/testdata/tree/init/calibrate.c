// Empty stand-in for init/calibrate.c of Linux 6.1.176.
