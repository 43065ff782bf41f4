// Empty stand-in for net/core/secure_seq.c of Linux 6.1.176.
