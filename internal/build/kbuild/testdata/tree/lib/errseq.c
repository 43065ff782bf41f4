// Empty stand-in for lib/errseq.c of Linux 6.1.176.
