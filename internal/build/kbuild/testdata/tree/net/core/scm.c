// Empty stand-in for net/core/scm.c of Linux 6.1.176.
