// Empty stand-in for net/devres.c of Linux 6.1.176.
